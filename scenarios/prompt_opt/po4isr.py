"""PO4ISR (Sun et al., 2024): prompt optimisation for session recommendation by reasons, refinements and a bandit.

Each round, for every prompt in the beam:

1. rank a batch of training cases; the *errors* are cases whose held-out item is missing or ranked
   below `error_cutoff` (10);
2. ask the optimiser LLM for the reasons behind some of the errors;
3. ask it to refine the prompt with those reasons (`refinements` answers), and paraphrase each
   accepted refinement (`paraphrases` answers) - these are the member's children;

then the beam and the children of *every* member compete in `pulls` rounds of a UCB1 bandit: each
pull ranks a fresh batch of training cases with one prompt, the reward is its mean NDCG@10, and the
prompt pulled is the one with the highest ``mean + c * sqrt(2 ln t / n)`` (unpulled prompts first).
The `beam` prompts with the highest mean reward form the next beam; each is scored on validation
once, and the final prompt is the best of all scored on validation.

Unlike the reference code, which adds reward/n to a running sum without averaging and keeps only
the last parent's children, the means here are true means over every pull (across rounds) and the
children of every beam member stay in the pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recarena.scenarios.config import option
from recarena.scenarios.prompt_opt.contract import Optimizer
from recarena.scenarios.prompt_opt.loop import Loop, describe_errors
from recarena.scenarios.prompt_opt.meta import paraphrase_messages, reasons_messages, refine_messages


@dataclass(frozen=True)
class PO4ISRSettings:
    """PO4ISR's knobs."""

    rounds: int = option(10, "most rounds (the budget usually stops it first)")
    beam: int = option(2, "prompts kept after each round's bandit selection")
    train_batch: int = option(8, "training cases ranked per beam member to collect its errors")
    error_cutoff: int = option(10, "a case is an error when the held-out item is missing or ranked below this")
    errors_shown: int = option(3, "errors shown to the optimiser LLM per question")
    refinements: int = option(1, "refined prompts asked for per beam member and round")
    paraphrases: int = option(1, "paraphrases asked for per accepted refinement")
    pulls: int = option(6, "bandit pulls per round")
    pull_batch: int = option(4, "training cases ranked per pull")
    exploration: float = option(1.0, "UCB's c: weight of the exploration bonus")


@dataclass
class ArmStats:
    """A prompt's bandit record: pulls and the rewards' sum (mean = total / pulls)."""

    pulls: int = 0
    total: float = 0.0
    rewards: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / self.pulls if self.pulls else 0.0

    def add(self, reward: float) -> None:
        self.pulls += 1
        self.total += reward
        self.rewards.append(reward)


def ucb_pick(arms: Sequence[str], stats: dict[str, ArmStats], exploration: float) -> str:
    """UCB1: an unpulled arm first (in order), else the highest ``mean + c * sqrt(2 ln t / n)``."""
    for arm in arms:
        if stats.setdefault(arm, ArmStats()).pulls == 0:
            return arm
    t = sum(stats[a].pulls for a in arms)
    return max(arms, key=lambda a: (stats[a].mean + exploration * math.sqrt(2.0 * math.log(t) / stats[a].pulls), -arms.index(a)))


def run_bandit(arms: Sequence[str], stats: dict[str, ArmStats], pulls: int, reward: Callable[[str], float], exploration: float) -> list[str]:
    """`pulls` UCB1 pulls over `arms` (stats updated in place); returns the arms pulled, in order."""
    pulled = []
    for _ in range(pulls):
        arm = ucb_pick(list(arms), stats, exploration)
        stats[arm].add(reward(arm))
        pulled.append(arm)
    return pulled


def top_by_mean(arms: Sequence[str], stats: dict[str, ArmStats], k: int) -> list[str]:
    """The `k` pulled arms with the highest mean reward (earlier arms win ties)."""
    pulled = [a for a in arms if stats.get(a, ArmStats()).pulls > 0]
    return sorted(pulled, key=lambda a: (-stats[a].mean, list(arms).index(a)))[:k]


class PO4ISR(Optimizer):
    """See the module docstring."""

    name = "po4isr"

    @classmethod
    def default_settings(cls) -> PO4ISRSettings:
        return PO4ISRSettings()

    def round_cost(self, beam_size: int, n_valid: int) -> int:
        """Requests one round may spend at most (ranker one per case), validation of the new beam included."""
        s: PO4ISRSettings = self.settings
        per_member = s.train_batch + 1 + s.refinements * (1 + s.paraphrases)
        return beam_size * per_member + s.pulls * s.pull_batch + s.beam * n_valid

    def _run(self, loop: Loop, train: Sequence[Any], valid: Sequence[Any]) -> None:
        s: PO4ISRSettings = self.settings
        by_id = {c.prompt_id: c for c in loop.candidates}
        beam, stats = [loop.initial.prompt_id], {}
        for round_ in range(1, s.rounds + 1):
            loop.reserve(self.round_cost(len(beam), len(valid)))
            children: list[str] = []
            for member_id in beam:
                member = by_id[member_id]
                results = loop.evaluate(member.text, loop.sample(train, s.train_batch), "train")
                errors = [r for r in results if r.is_error(s.error_cutoff)]
                if not errors:
                    continue
                shown = describe_errors(errors, s.errors_shown)
                reasons = loop.ask(reasons_messages(member.text, shown), "reasons", variant=round_ * 1000 + len(children))
                for r in range(s.refinements):
                    asked = loop.ask(refine_messages(member.text, shown, reasons.text, *loop.rules), "refine",
                                     variant=round_ * 1000 + 100 + len(by_id) + r)  # fmt: skip
                    refined = loop.propose(asked, f"po4isr round {round_} refine", member_id)
                    by_id[refined.prompt_id] = refined
                    if not refined.accepted:
                        continue
                    children.append(refined.prompt_id)
                    for p in range(s.paraphrases):
                        asked = loop.ask(paraphrase_messages(refined.text, *loop.rules), "paraphrase",
                                         variant=round_ * 1000 + 500 + len(by_id) + p)  # fmt: skip
                        para = loop.propose(asked, f"po4isr round {round_} paraphrase", refined.prompt_id)
                        by_id[para.prompt_id] = para
                        if para.accepted:
                            children.append(para.prompt_id)
            pool = list(dict.fromkeys(beam + children))

            def reward(prompt_id: str) -> float:
                results = loop.evaluate(by_id[prompt_id].text, loop.sample(train, s.pull_batch), "bandit")
                return sum(r.score for r in results) / len(results)

            pulled = run_bandit(pool, stats, s.pulls, reward, s.exploration)
            beam = top_by_mean(pool, stats, s.beam) or beam
            for prompt_id in pool:
                by_id[prompt_id].extra["bandit"] = {"pulls": stats[prompt_id].pulls, "mean_reward": stats[prompt_id].mean} \
                    if prompt_id in stats else {"pulls": 0, "mean_reward": None}  # fmt: skip
            for prompt_id in beam:
                loop.judge(by_id[prompt_id])
            loop.step_done(round=round_, children=children, pool=pool, pulled=pulled, beam=beam,
                           means={a: stats[a].mean for a in pool if a in stats}, best=loop.best().prompt_id)  # fmt: skip
