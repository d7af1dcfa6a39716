"""The machinery every optimiser shares: metered, logged, budgeted units of work and the candidate book.

An optimiser only ever touches the LLMs through `Loop.evaluate` (rank cases with a prompt) and
`Loop.ask` (one question to the optimiser LLM). Each is a *unit*: the budget is checked before it
(`BudgetExhausted` when it would not fit), its cost is measured per role, and its result and cost
go into the JSONL log, from which a resumed run takes it back (see log.py). `propose` turns an
optimiser LLM's answer into a candidate or a rejection with the reason; `judge` scores an accepted
candidate on the validation cases once (later calls reuse the score).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from recarena.simulator.data.streams import PROMPT_OPT_LOOP
from tqdm.auto import tqdm

from recarena.scenarios.prompt_opt.contract import (
    Budget,
    BudgetExhausted,
    CandidateRecord,
    CaseResult,
    Cost,
    OptimizationResult,
)
from recarena.scenarios.prompt_opt.log import RunLog, digest
from recarena.scenarios.prompt_opt.metering import OPTIMISER, RANKER, Meter

START, END = "<START>", "<END>"
_MARKED = re.compile(re.escape(START) + r"(.*?)(?:" + re.escape(END) + r"|$)", re.DOTALL)


@dataclass
class Toolkit:
    """What every optimiser works with: the evaluator (ranker LLM), the optimiser LLM, one meter for both."""

    evaluator: Any
    optimiser_llm: Any
    meter: Meter


@dataclass(frozen=True)
class Answer:
    """The optimiser LLM's answer to one question."""

    text: str
    ok: bool
    error: str = ""


def extract_marked(text: str) -> str | None:
    """The text between <START> and <END> (or after <START> when <END> is missing); None without <START>."""
    match = _MARKED.search(text or "")
    return match.group(1).strip() if match else None


def _normalised(text: str) -> str:
    return " ".join(text.split()).lower()


class Loop:
    """One optimisation run's state: budget, log, candidates, spend (see the module docstring)."""

    def __init__(self, method: str, toolkit: Toolkit, budget: Budget, *, seed: int, log_path: Path | None,
                 progress: bool, fingerprint: dict[str, Any]) -> None:  # fmt: skip
        self.method, self.toolkit, self.budget, self.seed = method, toolkit, budget, seed
        self.log_path, self.progress, self.fingerprint = log_path, progress, fingerprint
        self.evaluator = toolkit.evaluator
        self.rng = PROMPT_OPT_LOOP.generator(seed)
        self.spent: dict[str, Cost] = {RANKER: Cost(), OPTIMISER: Cost()}
        self.candidates: list[CandidateRecord] = []
        self.valid: Sequence[Any] = ()
        self.steps = 0
        self._occurrences: dict[str, int] = {}
        self._cases_seen = 0
        self.log: RunLog | None = None
        self._bar = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.log is not None:
            self.log.close()
        if self._bar is not None:
            self._bar.close()

    def start(self, initial: str, train: Sequence[Any], valid: Sequence[Any]) -> CandidateRecord:
        """Open the log and score the initial prompt on `valid` (the first point of every curve)."""
        ids = self.evaluator.case_id
        self.fingerprint = {**self.fingerprint, "train": digest([ids(c) for c in train]), "valid": digest([ids(c) for c in valid])}
        self.log = RunLog(self.log_path, self.fingerprint)
        self.valid = valid
        total = self.budget.calls or None
        self._bar = tqdm(total=total, desc=f"{self.method} (LLM requests)", disable=not self.progress, leave=False)
        record = self.propose(initial, "initial", None, marked=False)
        self.judge(record)
        return record

    @property
    def rules(self) -> tuple[tuple[str, ...], str]:
        """What every proposed template must keep: its placeholders and the answer format, for the meta-prompts."""
        return tuple(self.evaluator.placeholders), getattr(self.evaluator, "answer_format", "still ask for the candidate ids, best first")

    @property
    def initial(self) -> CandidateRecord:
        return self.candidates[0]

    def total_spent(self) -> Cost:
        total = Cost()
        for cost in self.spent.values():
            total.add(cost)
        return total

    # ------------------------------------------------------------------ units
    def _key(self, kind: str, payload: Any) -> str:
        base = f"{kind}:{digest(payload)}"
        self._occurrences[base] = self._occurrences.get(base, 0) + 1
        return f"{base}#{self._occurrences[base]}"

    def _afford(self, role: str, requests: int) -> None:
        spent = self.total_spent()
        if self.budget.calls and spent.requests + requests > self.budget.calls:
            raise BudgetExhausted(f"{requests} more requests would pass the budget of {self.budget.calls} ({spent.requests} spent)")
        if self.budget.tokens:
            mine = self.spent.get(role, Cost())
            per_request = mine.tokens / mine.requests if mine.requests else (spent.tokens / spent.requests if spent.requests else 0)
            if spent.tokens + requests * per_request > self.budget.tokens:
                raise BudgetExhausted(f"about {requests * per_request:.0f} more tokens would pass the budget of {self.budget.tokens}")

    def reserve(self, requests: int) -> None:
        """Stop now (`BudgetExhausted`) unless `requests` more would still fit: a step is not started half-paid."""
        self._afford(RANKER, requests)

    def _charge(self, role: str, cost: Cost) -> None:
        self.spent.setdefault(role, Cost()).add(cost)
        if self._bar is not None:
            self._bar.update(cost.requests)

    def _unit(self, kind: str, role: str, payload: Any, estimate: int, compute) -> Any:
        assert self.log is not None, "call start() first"
        key = self._key(kind, payload)
        logged = self.log.unit(key)
        if logged is not None:
            self._charge(role, Cost.from_dict(logged["cost"]))
            return logged["payload"]
        self._afford(role, estimate)
        before, started = self.toolkit.meter.snapshot(), time.perf_counter()
        result = compute()
        after = self.toolkit.meter.snapshot()
        cost = Cost()
        for name, value in after.items():
            cost.add(value.minus(before.get(name, Cost())))
        self._charge(role, cost)
        self.log.record_unit(key, role, result, cost.as_dict(), time.perf_counter() - started)
        return result

    def evaluate(self, text: str, cases: Sequence[Any], purpose: str) -> list[CaseResult]:
        """Rank `cases` with prompt `text` through the ranker LLM (one unit)."""
        ids = [self.evaluator.case_id(c) for c in cases]
        ranker = self.spent[RANKER]
        per_case = max(1.0, ranker.requests / self._cases_seen) if self._cases_seen else 1.0
        payload = self._unit("evaluate", RANKER, {"prompt": text, "cases": ids}, math.ceil(per_case * len(cases)),
                             lambda: [r.as_dict() for r in self.evaluator(text, list(cases))])  # fmt: skip
        self._cases_seen += len(cases)
        return [CaseResult(**r) for r in payload]

    def ask(self, messages: list[dict[str, str]] | str, purpose: str, *, variant: int = 0, temperature: float = 0.7,
            max_tokens: int = 384) -> Answer:  # fmt: skip
        """One question to the optimiser LLM; `variant` changes the sampling seed (a different draw)."""
        params = {"temperature": temperature, "max_tokens": max_tokens, "seed": self.seed * 100_003 + variant}
        llm = self.toolkit.optimiser_llm

        def compute() -> dict[str, Any]:
            reply = llm.chat(messages, params=params)
            return {"text": reply.text, "ok": reply.ok, "error": reply.error or ""}

        payload = self._unit("ask", OPTIMISER, {"messages": messages, "params": params}, 1, compute)
        return Answer(payload["text"], payload["ok"], payload["error"])

    # ------------------------------------------------------------------ candidates
    def propose(self, answer_or_text: Answer | str, origin: str, parent: str | None, *, marked: bool = True) -> CandidateRecord:
        """A new candidate from an optimiser answer (text between the markers) or a plain text.

        Rejected, with the reason, when the LLM failed, the markers are missing, the template lacks
        or invents placeholders, or it repeats an earlier candidate. Every proposal is kept."""
        prompt_id = f"P{len(self.candidates)}"
        reason, text = "", answer_or_text if isinstance(answer_or_text, str) else answer_or_text.text
        if isinstance(answer_or_text, Answer) and not answer_or_text.ok:
            reason = f"the optimiser LLM failed: {answer_or_text.error or 'no answer'}"
        elif marked:
            inner = extract_marked(text)
            reason = "" if inner else f"no prompt between {START} and {END} in the answer"
            text = inner or text
        if not reason:
            problems = self.evaluator.template_problems(text)
            reason = problems[0] if problems else ""
        if not reason:
            twin = next((c for c in self.candidates if c.accepted and _normalised(c.text) == _normalised(text)), None)
            reason = f"duplicate of {twin.prompt_id}" if twin is not None else ""
        record = CandidateRecord(prompt_id, text, origin, parent, accepted=not reason, reason=reason)
        self.candidates.append(record)
        assert self.log is not None
        self.log.event(f"candidate:{prompt_id}", prompt_id=prompt_id, origin=origin, parent=parent, accepted=record.accepted,
                       reason=reason, text=text)  # fmt: skip
        return record

    def judge(self, record: CandidateRecord) -> float:
        """Mean validation score of an accepted candidate (evaluated once)."""
        if record.valid_scores is None:
            results = self.evaluate(record.text, self.valid, "valid")
            record.valid_scores = [r.score for r in results]
            record.requests_at = self.total_spent().requests
            record.extra["valid_misses"] = sum(r.miss for r in results)
            assert self.log is not None
            self.log.event(f"judged:{record.prompt_id}", prompt_id=record.prompt_id, valid_mean=record.valid_mean,
                           requests_at=record.requests_at, misses=record.extra["valid_misses"])  # fmt: skip
        return float(record.valid_mean or 0.0)

    def best(self) -> CandidateRecord:
        """The candidate with the highest mean validation score (the earliest on ties)."""
        judged = [c for c in self.candidates if c.valid_scores]
        return max(judged, key=lambda c: (c.valid_mean, -self.candidates.index(c)))

    def step_done(self, **summary: Any) -> None:
        """Close one step of the method, with its summary in the log."""
        self.steps += 1
        assert self.log is not None
        self.log.event(f"step:{self.steps}", step=self.steps, requests=self.total_spent().requests, **summary)

    def result(self, stopped: str) -> OptimizationResult:
        assert self.log is not None
        self.log.event("end", stopped=stopped, best=self.best().prompt_id, requests=self.total_spent().requests)
        return OptimizationResult(self.method, self.candidates, self.best(), {k: v.copy() for k, v in self.spent.items()},
                                  stopped, self.steps, self.log_path, self.log.replayed)  # fmt: skip

    # ------------------------------------------------------------------ helpers for optimisers
    def sample(self, cases: Sequence[Any], n: int) -> list[Any]:
        """`n` cases drawn without replacement with the loop's RNG (all of them when there are fewer)."""
        if n >= len(cases):
            return list(cases)
        return [cases[i] for i in np.sort(self.rng.choice(len(cases), size=n, replace=False))]


def describe_errors(results: Sequence[CaseResult], limit: int, answer_chars: int = 300) -> str:
    """Mistakes as the optimiser LLM reads them: history, candidates, the model's answer and the truth."""
    blocks = []
    for number, r in enumerate(results[:limit], start=1):
        where = "left it out" if r.rank is None else f"ranked it {r.rank}"
        blocks.append(f"Mistake {number}:\nThe user's history:\n{r.history}\nThe candidates:\n{r.candidates}\n"
                      f"The model answered: {r.answer.strip()[:answer_chars] or '(nothing)'}\n"
                      f"The movie the user actually watched next: {r.truth} (the model {where})")  # fmt: skip
    return "\n\n".join(blocks) if blocks else "(no mistakes in this sample)"
