"""Accounting of LLM use per run and per component: calls, tokens, cache hits, failures, retries,
repairs, fallbacks (with the raw answer), unusable free text (fragments; see ``text.py``), wall time
and estimated cost from a price table."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # health imports redact from here
    from .health import HealthRule

log = logging.getLogger("recarena.agents.llm")

MAX_UNUSABLE_EVENTS = 50


class Price(BaseModel):
    """Price of one model in US dollars per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_per_million: float = Field(0.0, ge=0.0, description="USD per 1M prompt (input) tokens.")
    completion_per_million: float = Field(0.0, ge=0.0, description="USD per 1M completion (output) tokens.")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longer than 3 characters) in ``text`` with ``***``."""
    for secret in secrets:
        if secret and len(secret) > 3:
            text = text.replace(secret, "***")
    return text


@dataclass
class ComponentUsage:
    """Counters of one component (e.g. "users", "recommender"); all additive."""

    requests: int = 0  # chat and score requests answered, by the model or by the caller's fallback
    calls: int = 0  # backend invocations that were attempted, retries and repairs included
    failures: int = 0  # attempts that raised (timeout, connection, HTTP error, ...)
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    repairs: int = 0  # answers that failed validation and got a repair attempt
    fallbacks: int = 0  # requests answered with the caller's fallback
    score_by_generation: int = 0  # scores that had to fall back to a constrained short answer
    unusable_texts: int = 0  # free-text answers rejected as fragments (shown as "no usable answer"), see unusable_text
    wall_s: float = 0.0  # time spent waiting on the backend
    cost_usd: float = 0.0

    def add(self, other: "ComponentUsage") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class FallbackEvent:
    """One request that ended in the caller's fallback, with what the model actually said."""

    component: str
    kind: str  # "chat" or "score"
    reason: str
    raw_answer: str


@dataclass
class Accountant:
    """Thread-safe ledger shared by every LLM view of a run."""

    prices: dict[str, Price] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    by_component: dict[str, ComponentUsage] = field(default_factory=dict)
    fallback_events: list[FallbackEvent] = field(default_factory=list)
    unusable_text_events: list[FallbackEvent] = field(default_factory=list)
    """The first `MAX_UNUSABLE_EVENTS` fragments, so results.json shows what they looked like without growing per answer."""
    health: HealthRule | None = None  # None: fallbacks are counted, never fatal (library use, tests)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record(self, component: str, model: str | None = None, **counts: float) -> None:
        """Add counts to a component; tokens are priced with ``model``'s entry of the price table."""
        with self._lock:
            usage = self.by_component.setdefault(component, ComponentUsage())
            for name, value in counts.items():
                setattr(usage, name, getattr(usage, name) + value)
            price = self.prices.get(model or "")
            if price is not None:
                usage.cost_usd += (
                    counts.get("prompt_tokens", 0) * price.prompt_per_million
                    + counts.get("completion_tokens", 0) * price.completion_per_million
                ) / 1e6

    def fallback(self, component: str, kind: str, reason: str, raw_answer: str) -> None:
        """Count and log a fallback with the raw answer (secrets redacted)."""
        reason, raw_answer = redact(reason, self.secrets), redact(raw_answer, self.secrets)
        with self._lock:
            self.by_component.setdefault(component, ComponentUsage()).fallbacks += 1
            self.fallback_events.append(FallbackEvent(component, kind, reason, raw_answer))
        log.warning("LLM %s fallback in %s: %s; raw answer: %r", kind, component, reason, raw_answer[:500])

    def unusable_text(self, component: str, reason: str, raw_answer: str) -> None:
        """Count a free-text answer that is a fragment (the caller shows "no usable answer" instead).

        Deliberately not a fallback of the health rule: the text only fills reasons, interviews and
        profiles, while the decisions that make a run's figures (watch, rate, leave, satisfaction) are
        scored separately and stay the model's own. Stopping a run over fragments would throw those away;
        the counter is reported beside the fallbacks (results.json, the report) instead."""
        reason, raw_answer = redact(reason, self.secrets), redact(raw_answer, self.secrets)
        with self._lock:
            self.by_component.setdefault(component, ComponentUsage()).unusable_texts += 1
            if len(self.unusable_text_events) < MAX_UNUSABLE_EVENTS:
                self.unusable_text_events.append(FallbackEvent(component, "text", reason, raw_answer))
        log.info("LLM text in %s unusable (%s): %r", component, reason, raw_answer[:200])

    def answered(self, component: str, ok: bool, reason: str = "") -> None:
        """One request finished (an answer, or the fallback when not `ok`): the health rule judges the run so far."""
        self.record(component, requests=1)
        if self.health is not None:
            self.health.observe(ok, redact(reason, self.secrets))

    def total(self) -> ComponentUsage:
        """The whole run: the sum over components."""
        with self._lock:
            total = ComponentUsage()
            for usage in self.by_component.values():
                total.add(usage)
            return total

    def report(self) -> dict[str, Any]:
        """JSON-able report: per component, total and fallback events (secrets redacted)."""
        with self._lock:
            components = {name: asdict(u) for name, u in sorted(self.by_component.items())}
            events = [asdict(e) for e in self.fallback_events]
            unusable = [asdict(e) for e in self.unusable_text_events]
        report = {"total": asdict(self.total()), "by_component": components, "fallbacks": events, "unusable_texts": unusable}
        return json.loads(redact(json.dumps(report), self.secrets))

    def write(self, path: str | Path) -> Path:
        """Write :meth:`report` as indented JSON and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2))
        return path

    def table(self) -> str:
        """A plain-text table of the report for logs and terminals."""
        rows = [("component", "calls", "hits", "fail", "fallback", "unusable", "tok_in", "tok_out", "wall_s", "usd")]
        items = list(self.report()["by_component"].items()) + [("TOTAL", asdict(self.total()))]
        for name, u in items:
            rows.append((name, u["calls"], u["cache_hits"], u["failures"], u["fallbacks"], u["unusable_texts"], u["prompt_tokens"],
                         u["completion_tokens"], f"{u['wall_s']:.2f}", f"{u['cost_usd']:.4f}"))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows)
