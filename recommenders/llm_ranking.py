"""Rank one candidate list with an LLM: `rank_candidates`, listwise or pointwise.

* **listwise** (strong models): one chat call renders the template with every candidate
  (``C1: Title (1995); genres: ...``) and the answer is read by `parse_ranking`. An answer
  naming no candidate is retried at most `max_retries` times (never more than 2) with a stricter
  format reminder; if none of the tries is readable the case is a **miss** and its ranking is
  the seeded random order `parse_ranking` gives, counted, never passed off as a success.
* **pointwise** (what a 135M model can do): one ``score`` call per candidate reads the
  log-probability of ``Yes`` against ``No``; candidates are ranked by P(Yes), ties broken at
  random with the request's generator. Calls that fail (timeout, backend down) are counted and
  their candidates go last; when every call fails the case is a miss.

The candidates are shown in the order given (the caller shuffles them with a seed); the outcome
says whether the model's ranking kept that order (RecPrompt's position-bias check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import RecommenderError
from .llm_parse import ParsedRanking, parse_ranking
from .llm_prompt import FORMAT_REMINDER, Candidate, PromptTemplate, candidates_text

RankMode = Literal["listwise", "pointwise"]
MODES: tuple[str, ...] = ("listwise", "pointwise")
YES_NO = ("Yes", "No")
MAX_RETRIES = 2


@dataclass(frozen=True)
class RankOutcome:
    """One ranked candidate list and how it was obtained.

    ``items`` is the full ranking (item ids, best first, each candidate once); ``presented`` the
    order the prompt showed. ``miss`` is True when no usable model answer came back (the ranking
    is then a seeded random fallback). ``calls`` counts LLM requests, retries included;
    ``failed_calls`` those the LLM layer answered with its fallback (timeouts, errors).
    """

    items: tuple[int, ...]
    presented: tuple[int, ...]
    mode: str
    miss: bool
    calls: int
    retries: int = 0
    failed_calls: int = 0
    parsed: ParsedRanking | None = None
    scores: tuple[float, ...] = ()
    answers: tuple[str, ...] = field(default=(), repr=False)

    @property
    def kept_order(self) -> bool:
        """The model's ranking is exactly the presented order (the position-bias symptom)."""
        return not self.miss and self.items == self.presented

    @property
    def kept_first(self) -> bool:
        """The model put the first presented candidate first."""
        return not self.miss and bool(self.items) and self.items[0] == self.presented[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "miss": self.miss, "calls": self.calls, "retries": self.retries,
            "failed_calls": self.failed_calls, "kept_order": self.kept_order, "kept_first": self.kept_first,
            **(self.parsed.as_dict() if self.parsed else {}),
        }  # fmt: skip


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def rank_listwise(llm: Any, template: PromptTemplate, history: str, candidates: Sequence[Candidate],
                  rng: np.random.Generator, *, user_profile: str | None = None, max_retries: int = MAX_RETRIES,
                  fuzzy_threshold: float = 0.8, component: str = "reranker") -> RankOutcome:
    """Ask once for an ordered list of ids; retry an unreadable answer at most `max_retries` times."""
    max_retries = _check_retries(max_retries)
    prompt = template.render(history=history, candidates=candidates_text(candidates), user_profile=user_profile)
    conversation = _messages(prompt)
    budget = {"max_tokens": min(1024, 8 * len(candidates) + 32)}
    # The example lists ids out of the order shown, so that the reminder does not invite an echo of that order.
    example = ", ".join(c.label for c in reversed(list(candidates)[:3])) + (", ..." if len(candidates) > 3 else "")
    best: ParsedRanking | None = None
    answers: list[str] = []
    calls = failed = 0
    for attempt in range(max_retries + 1):
        reply = llm.chat(conversation, params=budget, fallback="", component=component)
        calls += 1
        if not reply.ok:  # the transport already retried; another format reminder would not help
            failed += 1
            break
        answers.append(reply.text)
        parsed = parse_ranking(reply.text, candidates, np.random.default_rng(rng.integers(2**63)), fuzzy_threshold)
        if best is None or parsed.parsed > best.parsed:
            best = parsed
        if parsed.parsed_any:
            break
        conversation = conversation + [{"role": "assistant", "content": reply.text},
                                       {"role": "user", "content": FORMAT_REMINDER.format(example=example)}]
    if best is None:
        best = parse_ranking("", candidates, rng, fuzzy_threshold)
    presented = tuple(c.item for c in candidates)
    return RankOutcome(best.items, presented, "listwise", miss=not best.parsed_any, calls=calls,
                       retries=max(0, len(answers) - 1), failed_calls=failed, parsed=best, answers=tuple(answers))


def rank_pointwise(llm: Any, template: PromptTemplate, history: str, candidates: Sequence[Candidate],
                   rng: np.random.Generator, *, user_profile: str | None = None,
                   component: str = "reranker") -> RankOutcome:
    """P(Yes) per candidate from one ``score`` call each; ties and failed calls ordered at random."""
    requests = [_messages(template.render(history=history, candidates=c.text, user_profile=user_profile))
                for c in candidates]
    replies = llm.score_many(requests, list(YES_NO), component=component) if requests else []
    scores = np.array([r.probabilities.get("Yes", 0.0) if r.ok else -1.0 for r in replies], dtype=np.float64)
    failed = sum(not r.ok for r in replies)
    tie_break = rng.permutation(len(candidates))
    order = np.lexsort((tie_break, -scores))  # last key first: by score, then the random tie-break
    presented = tuple(c.item for c in candidates)
    return RankOutcome(tuple(candidates[i].item for i in order), presented, "pointwise",
                       miss=bool(candidates) and failed == len(candidates), calls=len(requests),
                       failed_calls=failed, scores=tuple(float(s) for s in scores))


def rank_candidates(llm: Any, template: PromptTemplate, mode: RankMode, history: str, candidates: Sequence[Candidate],
                    rng: np.random.Generator, *, user_profile: str | None = None, max_retries: int = MAX_RETRIES,
                    fuzzy_threshold: float = 0.8, component: str = "reranker") -> RankOutcome:
    """Rank `candidates` (shown in the given order) for a user whose history is the text `history`."""
    if mode == "listwise":
        return rank_listwise(llm, template, history, candidates, rng, user_profile=user_profile,
                             max_retries=max_retries, fuzzy_threshold=fuzzy_threshold, component=component)
    if mode == "pointwise":
        return rank_pointwise(llm, template, history, candidates, rng, user_profile=user_profile, component=component)
    raise RecommenderError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _check_retries(max_retries: int) -> int:
    if not 0 <= int(max_retries) <= MAX_RETRIES:
        raise RecommenderError(f"max_retries must be between 0 and {MAX_RETRIES}, got {max_retries}")
    return int(max_retries)
