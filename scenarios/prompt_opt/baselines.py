"""The equal-budget baselines every optimiser must beat.

* `InitialPrompt`: the starting prompt as it is (scored on validation; nothing else spent).
* `BestOfN`: draw paraphrases of the initial prompt from the optimiser LLM, score each valid one on
  validation, keep the best; it draws until the budget is spent, so under the same `Budget` it
  costs what the optimiser it is compared with costs. An optimiser earns its place only by beating
  it at equal cost: otherwise its feedback loop adds nothing over trying random rewordings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recarena.scenarios.config import option
from recarena.scenarios.prompt_opt.contract import Optimizer
from recarena.scenarios.prompt_opt.loop import Loop
from recarena.scenarios.prompt_opt.meta import paraphrase_messages


class InitialPrompt(Optimizer):
    """The initial prompt, unchanged."""

    name = "initial"

    def _run(self, loop: Loop, train: Sequence[Any], valid: Sequence[Any]) -> None:
        loop.step_done(candidate=loop.initial.prompt_id, valid_mean=loop.initial.valid_mean)


@dataclass(frozen=True)
class BestOfNSettings:
    """Best-of-N's knobs."""

    draws: int = option(1000, "most paraphrases drawn (the budget usually stops it first)")


class BestOfN(Optimizer):
    """Best of N random paraphrases of the initial prompt, N set by the budget."""

    name = "best-of-n"

    @classmethod
    def default_settings(cls) -> BestOfNSettings:
        return BestOfNSettings()

    def _run(self, loop: Loop, train: Sequence[Any], valid: Sequence[Any]) -> None:
        initial = loop.initial
        for draw in range(1, self.settings.draws + 1):
            loop.reserve(1 + len(valid))
            asked = loop.ask(paraphrase_messages(initial.text, *loop.rules), f"draw {draw}", variant=draw,
                             temperature=1.0)  # fmt: skip
            record = loop.propose(asked, f"paraphrase {draw}", initial.prompt_id)
            if record.accepted:
                loop.judge(record)
            loop.step_done(candidate=record.prompt_id, accepted=record.accepted, reason=record.reason,
                           valid_mean=record.valid_mean, best=loop.best().prompt_id)  # fmt: skip
