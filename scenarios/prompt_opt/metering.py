"""Counting every LLM request per role (ranker, optimiser), in figures that a warm cache does not change.

The LLM layer's own accountant counts model calls, so a rerun on a warm cache shows none; a budget
counted that way would let a warm rerun do more work than the cold run and give different results.
`MeteredLLM` counts *requests* (model or cache) and their tokens; the tokens of an answer the cache
gave are read from a small side store (``<cache>.tokens``) that remembers them by the request's
cache key, so a request costs the same tokens whoever answers it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recarena.agents.llm import LLM, SQLiteCache

from recarena.scenarios.prompt_opt.contract import Cost

RANKER, OPTIMISER = "ranker", "optimiser"


class Meter:
    """Thread-safe per-role cost counters; `snapshot` + `Cost.minus` measure a unit of work."""

    def __init__(self, token_store: SQLiteCache | None = None) -> None:
        self.by_role: dict[str, Cost] = {}
        self.token_store = token_store
        self._lock = threading.Lock()

    def record(self, role: str, cost: Cost) -> None:
        with self._lock:
            self.by_role.setdefault(role, Cost()).add(cost)

    def snapshot(self) -> dict[str, Cost]:
        with self._lock:
            return {role: cost.copy() for role, cost in self.by_role.items()}

    def total(self) -> Cost:
        total = Cost()
        for cost in self.snapshot().values():
            total.add(cost)
        return total

    def tokens_of(self, call_id: str) -> tuple[int, int]:
        if self.token_store is None or not call_id:
            return 0, 0
        hit = self.token_store.get(call_id)
        return (int(hit["prompt"]), int(hit["completion"])) if hit else (0, 0)

    def remember_tokens(self, call_id: str, prompt: int, completion: int) -> None:
        if self.token_store is not None and call_id:
            self.token_store.put(call_id, "tokens", {"prompt": prompt, "completion": completion})


def token_store_for(llm: LLM) -> SQLiteCache | None:
    """The side store of token counts next to `llm`'s answer cache (None without a cache)."""
    if llm.cache is None:
        return None
    return SQLiteCache(Path(str(llm.cache.path) + ".tokens"))


class MeteredLLM(LLM):
    """An `LLM` view whose every chat/score request is booked in a `Meter` under one role.

    It shares the backend, cache, concurrency bound and accountant of the LLM it wraps, so it can
    be handed to any component that takes an LLM (the reranker, the evaluator).
    """

    meter: Meter
    role: str

    @classmethod
    def wrap(cls, llm: LLM, meter: Meter, role: str) -> MeteredLLM:
        view = cls.__new__(cls)
        view.__dict__.update(llm.__dict__)
        view.meter, view.role = meter, role
        view.component = role
        return view

    def _book(self, reply: Any) -> None:
        ok = getattr(reply, "ok", True)
        if reply.cached:
            prompt, completion = self.meter.tokens_of(reply.call_id)
        else:
            prompt, completion = getattr(reply, "prompt_tokens", 0), getattr(reply, "completion_tokens", 0)
            if ok:
                self.meter.remember_tokens(reply.call_id, prompt, completion)
        price = self.accountant.prices.get(self._identity.get("model") or "")
        usd = (prompt * price.prompt_per_million + completion * price.completion_per_million) / 1e6 if price else 0.0
        self.meter.record(self.role, Cost(requests=1, model_calls=int(not reply.cached), cache_hits=int(reply.cached),
                                          prompt_tokens=prompt, completion_tokens=completion, failures=int(not ok),
                                          cost_usd=usd))  # fmt: skip

    def chat(self, messages: Sequence[Any] | str, schema: Any = None, **kwargs: Any):  # type: ignore[override]
        reply = super().chat(messages, schema, **kwargs)
        self._book(reply)
        return reply

    def score(self, messages: Sequence[Any] | str, options: Sequence[str], **kwargs: Any):  # type: ignore[override]
        reply = super().score(messages, options, **kwargs)
        self._book(reply)
        return reply

    def for_component(self, component: str) -> MeteredLLM:
        """Still booked under this view's role (the meter's roles are what the budget counts)."""
        view = super().for_component(component)
        return view  # type: ignore[return-value]
