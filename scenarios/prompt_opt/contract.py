"""The prompt-optimiser contract: one call, everything it tried, what it cost, what it chose.

    optimizer = PO4ISR(toolkit, PO4ISRSettings(), seed=0, log_path=Path("runs/x/po4isr.jsonl"))
    result = optimizer.optimize(initial_prompt, train_cases, valid_cases, Budget(calls=300))
    result.best.text, result.best.valid_mean, result.cost_by_role["optimiser"].requests

The pieces:

* an **evaluator** (`Evaluator`) ranks cases with a prompt template through the *ranker* LLM and
  returns one `CaseResult` per case: the NDCG@10 of the held-out item in the model's ranking, its
  rank (None when the answer missed it), the raw answer and the texts an optimiser may show
  (history, candidates, truth). It also says why a template is unusable (`template_problems`).
* the **toolkit** (`Toolkit`) is the evaluator plus the *optimiser* LLM (the one that writes prompts),
  both metered by one `Meter` per role.
* ``optimize(initial_prompt, train, valid, budget) -> OptimizationResult``: an optimiser may rank
  `train` cases as often as it likes (they are its training signal), ranks `valid` cases only to
  choose among candidates, and never sees the test cases. Every candidate prompt it produced is in
  the result, accepted or rejected with the reason, with its validation scores where it was
  evaluated, and the cost (requests and tokens, per role) of the whole run.
* the **budget** (`Budget`) caps requests and/or tokens over both roles. An optimiser checks it
  before every unit of work (one evaluation, one optimiser question) and stops cleanly when the
  next unit would not fit: the result then says ``stopped="budget"``. A unit's cost is estimated from
  the requests per case seen so far, so the ranker's format-reminder retries inside a unit can pass
  the cap by those retries (none with ``retries=0``).

A *request* is one question to the LLM layer, whether the model or the cache answered it, so the
budget and every count in a result are the same on a cold and a warm cache.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from recarena.scenarios.config import option
from recarena.scenarios.contract import ScenarioError

NDCG_CUTOFF = 10


class PromptOptError(ScenarioError):
    """A bad prompt-optimisation input (template, method, budget): one line naming the cause."""


class BudgetExhausted(Exception):
    """Raised inside an optimiser when the next unit of work would not fit the budget; ends the loop cleanly."""


@dataclass(frozen=True)
class Budget:
    """The most an optimisation may spend, over the ranker and optimiser roles together (0: no cap)."""

    calls: int = option(0, "requests to the LLM layer (cache hits included)")
    tokens: int = option(0, "prompt + completion tokens")

    def validate(self) -> None:
        if self.calls < 0 or self.tokens < 0:
            raise PromptOptError(f"budget: must not be negative, got calls={self.calls}, tokens={self.tokens}")
        if self.calls == 0 and self.tokens == 0:
            raise PromptOptError("budget: a budget of zero calls and zero tokens allows no work; give --budget CALLS (or --budget-tokens)")


@dataclass
class Cost:
    """What some LLM work cost; additive."""

    requests: int = 0
    model_calls: int = 0  # requests the model answered (the rest came from the cache)
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0  # requests answered with a fallback (timeout, invalid answer)
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Cost) -> Cost:
        for name in _COST_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def minus(self, other: Cost) -> Cost:
        return Cost(**{name: getattr(self, name) - getattr(other, name) for name in _COST_FIELDS})

    def copy(self) -> Cost:
        return dataclasses.replace(self)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def stable(self) -> dict[str, Any]:
        """The counts that do not depend on the cache's state (what results.json compares across reruns)."""
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "failures": self.failures, "cost_usd": self.cost_usd}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cost:
        return cls(**{k: data.get(k, 0) for k in _COST_FIELDS})


_COST_FIELDS = tuple(f.name for f in dataclasses.fields(Cost))


@dataclass(frozen=True)
class CaseResult:
    """One ranking case ranked with one prompt."""

    case_id: str
    score: float
    """NDCG@10 of the held-out item in the model's ranking (0 when it is missing or below 10)."""
    rank: int | None
    """1-based rank of the held-out item in the answer; None when the answer left it out."""
    answer: str
    """The model's raw answer."""
    history: str = ""
    candidates: str = ""
    truth: str = ""
    miss: bool = False
    """The answer could not be used (unparseable, timeout): a counted miss, scored 0."""

    def is_error(self, cutoff: int = NDCG_CUTOFF) -> bool:
        """PO4ISR's notion of a mistake: the held-out item missing or ranked below `cutoff`."""
        return self.rank is None or self.rank > cutoff

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ndcg_at(rank: int | None, cutoff: int = NDCG_CUTOFF) -> float:
    """NDCG@cutoff of one held-out item at 1-based `rank` (0 when missing or below the cutoff)."""
    return 0.0 if rank is None or rank > cutoff else 1.0 / math.log2(rank + 1)


@runtime_checkable
class Evaluator(Protocol):
    """Ranks cases with a prompt template through the ranker LLM (one `CaseResult` per case, in order)."""

    def __call__(self, template: str, cases: Sequence[Any]) -> list[CaseResult]: ...

    def template_problems(self, template: str) -> list[str]:
        """Why `template` cannot be used (empty when it can): missing or unknown placeholders."""
        ...

    def case_id(self, case: Any) -> str:
        """A stable id of `case` (for logs, resume and sampling)."""
        ...

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholders every template must keep, e.g. ``("history", "candidates")``."""
        ...


@dataclass
class CandidateRecord:
    """A prompt an optimiser proposed (or started from), and what became of it."""

    prompt_id: str
    text: str
    origin: str
    """How it was made: ``initial``, ``recprompt step 3``, ``po4isr round 2 refine``, ``paraphrase 4``..."""
    parent: str | None = None
    accepted: bool = True
    reason: str = ""
    """Why it was rejected, or how it was judged."""
    valid_scores: list[float] | None = None
    """Per validation case, in the order of the validation cases (None: never evaluated on validation)."""
    requests_at: int = 0
    """Requests spent (both roles) when its validation score became known: the x of the curve."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Method-specific figures (e.g. PO4ISR's bandit pulls and mean reward)."""

    @property
    def valid_mean(self) -> float | None:
        return None if not self.valid_scores else float(sum(self.valid_scores) / len(self.valid_scores))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "valid_mean": self.valid_mean}


@dataclass
class OptimizationResult:
    """Everything one optimisation did (see the module docstring)."""

    method: str
    candidates: list[CandidateRecord]
    best: CandidateRecord
    cost_by_role: dict[str, Cost]
    stopped: str
    """``finished`` (the method ran its course) or ``budget`` (the next unit of work did not fit)."""
    steps: int
    log_path: Path | None = None
    resumed_units: int = 0
    """Units of work read back from the log instead of being redone (a resumed run)."""

    @property
    def cost(self) -> Cost:
        total = Cost()
        for cost in self.cost_by_role.values():
            total.add(cost)
        return total

    def curve(self) -> list[tuple[int, float]]:
        """(requests spent, best validation mean so far) at each validation evaluation."""
        points, best = [], -math.inf
        for record in sorted((c for c in self.candidates if c.valid_scores), key=lambda c: c.requests_at):
            best = max(best, record.valid_mean)
            points.append((record.requests_at, best))
        return points

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "stopped": self.stopped, "steps": self.steps, "best": self.best.as_dict(),
            "candidates": [c.as_dict() for c in self.candidates], "curve": self.curve(),
            "cost_by_role": {role: cost.stable() for role, cost in sorted(self.cost_by_role.items())},
            "cost": self.cost.stable(),
        }  # fmt: skip


class Optimizer(ABC):
    """A prompt optimiser: see the module docstring. Subclasses set ``name`` and implement `_run`."""

    name: ClassVar[str]

    def __init__(self, toolkit: Any, settings: Any = None, *, seed: int = 0, log_path: Path | None = None,
                 progress: bool = False) -> None:  # fmt: skip
        self.toolkit = toolkit
        self.settings = settings if settings is not None else self.default_settings()
        self.seed = seed
        self.log_path = log_path
        self.progress = progress

    @classmethod
    def default_settings(cls) -> Any:
        return None

    def optimize(self, initial_prompt: str, train: Sequence[Any], valid: Sequence[Any], budget: Budget) -> OptimizationResult:
        """Search for a better prompt than `initial_prompt` within `budget` (see the module docstring)."""
        from recarena.scenarios.prompt_opt.loop import Loop

        budget.validate()
        problems = self.toolkit.evaluator.template_problems(initial_prompt)
        if problems:
            raise PromptOptError(f"initial prompt: {problems[0]}")
        if not valid:
            raise PromptOptError("valid: no validation cases to choose a prompt on")
        loop = Loop(self.name, self.toolkit, budget, seed=self.seed, log_path=self.log_path, progress=self.progress,
                    fingerprint={"method": self.name, "settings": _settings_dict(self.settings), "seed": self.seed,
                                 "budget": dataclasses.asdict(budget), "initial": initial_prompt})  # fmt: skip
        with loop:
            try:
                loop.start(initial_prompt, train, valid)
            except BudgetExhausted:
                raise PromptOptError(f"budget: {budget.calls or budget.tokens} {'calls' if budget.calls else 'tokens'} cannot "
                                     f"evaluate even the initial prompt on {len(valid)} validation cases") from None
            try:
                self._run(loop, train, valid)
                stopped = "finished"
            except BudgetExhausted:
                stopped = "budget"
            return loop.result(stopped)

    @abstractmethod
    def _run(self, loop: Any, train: Sequence[Any], valid: Sequence[Any]) -> None:
        """The method's search; `loop` holds the initial candidate (evaluated on `valid`) and the tools."""


def _settings_dict(settings: Any) -> Any:
    return dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
