"""Every prompt optimiser by name (explicit, no discovery), and the toolkit they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recarena.scenarios.prompt_opt.baselines import BestOfN, InitialPrompt
from recarena.scenarios.prompt_opt.contract import Optimizer, PromptOptError
from recarena.scenarios.prompt_opt.loop import Toolkit
from recarena.scenarios.prompt_opt.metering import OPTIMISER, RANKER, Meter, MeteredLLM, token_store_for
from recarena.scenarios.prompt_opt.po4isr import PO4ISR
from recarena.scenarios.prompt_opt.recprompt import RecPrompt

METHODS: dict[str, type[Optimizer]] = {
    "po4isr": PO4ISR,
    "recprompt": RecPrompt,
    "best-of-n": BestOfN,
    "initial": InitialPrompt,
}
BASELINES = ("initial", "best-of-n")


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimiser called `name`; PromptOptError naming the known ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise PromptOptError(f"method: unknown method {name!r}; known: {', '.join(METHODS)}") from None


def make_toolkit(llm: Any, evaluator_for: Callable[[Any], Any], optimiser_llm: Any = None) -> Toolkit:
    """A toolkit whose ranker and optimiser requests are metered apart.

    `evaluator_for(ranker_llm)` builds the evaluator on the metered ranker view of `llm`; the
    optimiser LLM is `optimiser_llm` (a stronger model, say) or `llm` itself."""
    meter = Meter(token_store_for(llm))
    ranker = MeteredLLM.wrap(llm, meter, RANKER)
    writer = MeteredLLM.wrap(optimiser_llm if optimiser_llm is not None else llm, meter, OPTIMISER)
    return Toolkit(evaluator_for(ranker), writer, meter)
