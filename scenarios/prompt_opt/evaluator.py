"""The evaluator: rank `prompt_bench` cases with a template, exactly as the reranker and the benchmark do.

Cases are `recarena.scenarios.prompt_bench.RankingCase`s of one of its protocols (``recprompt``:
10 candidates; ``po4isr``: 20). `split_cases` draws *disjoint* train, validation and test users
with a seed, so a prompt is chosen on other people than it is tested on; a train case's target is
the user's last training item, so an optimiser never sees a held-out interaction.

`RerankEvaluator` ranks each case with `prompt_bench.LLMCaseRanker` (listwise or pointwise through
`rank_candidates`, misses counted) and scores it with `prompt_bench.case_metrics`: the score is
NDCG@10 of the target in the full ranking (a miss is ranked by the seeded random fallback, as in
the benchmark, and flagged); `rank` is the target's place among the candidates the model named
(None when it named it not), which is what "the model left it out" means to an optimiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from recarena.recommenders.llm_prompt import (
    PromptTemplate,
    candidates_text,
    template_problems,
)
from recarena.simulator.data.splits import Split
from recarena.simulator.data.streams import PROMPT_OPT_USERS

from recarena.scenarios.prompt_bench.protocols import (
    LLMCaseRanker,
    RankingCase,
    build_cases,
    case_metrics,
    eligible_users,
)
from recarena.scenarios.prompt_opt.contract import CaseResult, PromptOptError

ANSWER_FORMAT = {
    "listwise": "still ask for the candidate ids, best first",
    "pointwise": "still ask whether the user will enjoy the one candidate movie, to be answered Yes or No",
}


def split_cases(split: Split, protocol: str, counts: dict[str, int], seed: int, history_len: int = 10) -> dict[str, list[RankingCase]]:
    """Cases of `protocol` for disjoint users per part (``train``/``valid``/``test``: how many), drawn with `seed`."""
    pools = [set(eligible_users(split, part).tolist()) for part in counts]
    everyone = sorted(set.intersection(*pools))
    need = sum(counts.values())
    if need > len(everyone):
        raise PromptOptError(f"users: {need} train + valid + test users asked for, only {len(everyone)} are eligible")
    order = PROMPT_OPT_USERS.generator(seed).permutation(everyone)
    out, start = {}, 0
    for part, count in counts.items():
        out[part] = build_cases(split, protocol, np.sort(order[start : start + count]), seed, part=part, history_len=history_len)
        start += count
    return out


class RerankEvaluator:
    """Ranks `RankingCase`s with a template through an LLM, as the reranker does; one `CaseResult` each."""

    placeholders = ("history", "candidates")

    def __init__(self, llm: Any, *, mode: Literal["listwise", "pointwise"] = "listwise", seed: int = 0, max_retries: int = 1) -> None:
        if mode not in ANSWER_FORMAT:
            raise PromptOptError(f"mode: must be listwise or pointwise, got {mode!r}")
        self.llm, self.mode, self.seed, self.max_retries = llm, mode, seed, max_retries
        self.answer_format = ANSWER_FORMAT[mode]

    def template_problems(self, template: str) -> list[str]:
        return template_problems(template)

    def case_id(self, case: RankingCase) -> str:
        return f"{case.part}-u{case.user}"

    def __call__(self, template: str, cases: Sequence[RankingCase]) -> list[CaseResult]:
        ranker = LLMCaseRanker(self.llm, PromptTemplate(template, name="candidate"), self.mode, self.max_retries, self.seed)
        return [self._score(case, ranker.rank(case)) for case in cases]

    def _score(self, case: RankingCase, outcome: Any) -> CaseResult:
        candidates = list(case.candidates)
        metrics = case_metrics(outcome.items.index(case.target) + 1, len(candidates))
        named = outcome.items[: outcome.parsed.parsed] if outcome.parsed is not None else outcome.items
        rank = named.index(case.target) + 1 if not outcome.miss and case.target in named else None
        if self.mode == "pointwise":
            answer = ", ".join(f"{c.label} P(Yes)={s:.2f}" for c, s in zip(candidates, outcome.scores))
        else:
            answer = outcome.answers[-1] if outcome.answers else ""
        truth = next(c for c in candidates if c.item == case.target)
        return CaseResult(self.case_id(case), float(metrics["ndcg@10"]), rank, answer, case.history_text,
                          candidates_text(candidates), truth.line, miss=bool(outcome.miss))  # fmt: skip
