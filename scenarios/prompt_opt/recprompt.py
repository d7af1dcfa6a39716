"""RecPrompt (Liu et al., 2023): iterative prompt refinement from the current prompt's mistakes.

Each step: rank a sample of training cases with the current prompt; show the optimiser LLM the
meta-instruction, the current prompt, some of the cases it got wrong (history, candidates, the
model's answer, the truth) and the best prompt so far with its mean validation score; take the new
prompt from between the markers; accept it only when its placeholders are valid and it repeats no
earlier candidate; score it on validation; it becomes the current prompt, and the best is kept by
mean validation score.

Unlike the reference code, which always feeds the initial template back as both the current and
the best prompt, the current and best prompts here are the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recarena.scenarios.config import option
from recarena.scenarios.prompt_opt.contract import Optimizer
from recarena.scenarios.prompt_opt.loop import Loop, describe_errors
from recarena.scenarios.prompt_opt.meta import recprompt_messages


@dataclass(frozen=True)
class RecPromptSettings:
    """RecPrompt's knobs."""

    steps: int = option(20, "most refinement steps (the budget usually stops it first)")
    train_batch: int = option(8, "training cases ranked with the current prompt per step, to find its mistakes")
    errors_shown: int = option(3, "mistakes shown to the optimiser LLM per step")
    error_cutoff: int = option(1, "a case is a mistake when the held-out item is not among the model's top `error_cutoff`")


class RecPrompt(Optimizer):
    """See the module docstring."""

    name = "recprompt"

    @classmethod
    def default_settings(cls) -> RecPromptSettings:
        return RecPromptSettings()

    def _run(self, loop: Loop, train: Sequence[Any], valid: Sequence[Any]) -> None:
        settings: RecPromptSettings = self.settings
        current = loop.initial
        for step in range(1, settings.steps + 1):
            loop.reserve(settings.train_batch + 1 + len(valid))
            results = loop.evaluate(current.text, loop.sample(train, settings.train_batch), "train")
            wrong = [r for r in results if r.is_error(settings.error_cutoff)]
            best = loop.best()
            messages = recprompt_messages(current.text, describe_errors(wrong, settings.errors_shown), best.text,
                                          best.valid_mean or 0.0, *loop.rules)  # fmt: skip
            record = loop.propose(loop.ask(messages, f"step {step}", variant=step), f"recprompt step {step}", current.prompt_id)
            if record.accepted:
                loop.judge(record)
                current = record
            loop.step_done(candidate=record.prompt_id, accepted=record.accepted, reason=record.reason,
                           valid_mean=record.valid_mean, best=loop.best().prompt_id, train_errors=len(wrong))  # fmt: skip
