"""The LLM health rule: a run whose model mostly fails must stop, not report fallbacks as answers.

Every request the layer answers (chat or score) is either a real answer or the caller's fallback
(after retries and repair). A dead or broken endpoint turns every user decision into a uniform
guess, and the results would look real. Two checks stop that:

* :func:`probe_backend`, before a run: a cheap request to a remote endpoint; nothing answering is an
  :class:`LLMHealthError` at once (a one-line message naming the address);
* :class:`HealthRule`, during a run: once `min_requests` requests were answered, the share of
  fallbacks among all so far, or among the last `window`, above `max_failure_rate` raises
  :class:`LLMHealthError` from the call that crossed it, and from every later call (so all
  threads of a batch stop, not only one).

The rule is not the LLM's alone: a recommender service (`recarena.recommenders.service`) counts its failed
calls by the same rule, through a subclass that names its own error type and words its own message
(`error_type`, `_message`), and stops at once when the service is gone (`trip`).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import ClassVar

from .accounting import redact
from .protocol import Backend, LLMError

DEFAULT_MAX_FAILURE_RATE = 0.2
"""The share of requests ending in a fallback beyond which a run stops (the CLI's default)."""


class LLMHealthError(LLMError):
    """The LLM fails too often (or not at all reachable) for its answers to mean anything; one line."""


@dataclass
class HealthRule:
    """Stops a run whose share of fallbacks passes `max_failure_rate` (see the module docstring)."""

    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    min_requests: int = 20
    """Requests answered before the rule judges (a single early failure is not a trend)."""
    window: int = 100
    """The sliding window: a long healthy start does not hide an endpoint that died later."""
    requests: int = 0
    failures: int = 0
    tripped: str | None = None
    error_type: ClassVar[type[Exception]] = LLMHealthError
    """What a broken rule raises (a subclass for another kind of dependency names its own)."""
    _recent: collections.deque = field(default_factory=collections.deque, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        if self.min_requests < 1 or self.window < self.min_requests:
            raise ValueError(f"need 1 <= min_requests <= window, got {self.min_requests} and {self.window}")
        self._recent = collections.deque(maxlen=self.window)
        self._lock = threading.Lock()

    def observe(self, ok: bool, reason: str = "") -> None:
        """Count one answered request; raise LLMHealthError when the rule is (or was already) broken."""
        with self._lock:
            if self.tripped is None:
                self.requests += 1
                self.failures += int(not ok)
                self._recent.append(not ok)
                self.tripped = self._verdict(reason)
            message = self.tripped
        if message is not None:
            raise self.error_type(message)

    def trip(self, message: str) -> None:
        """Break the rule now with `message` (a dependency known to be gone), so that this and every later call raise."""
        with self._lock:
            if self.tripped is None:
                self.tripped = message
            message = self.tripped
        raise self.error_type(message)

    def _verdict(self, reason: str) -> str | None:
        if self.requests < self.min_requests or self.max_failure_rate >= 1.0:
            return None
        overall = self.failures / self.requests
        recent = sum(self._recent) / len(self._recent)
        if overall <= self.max_failure_rate and recent <= self.max_failure_rate:
            return None
        last = f"; last error: {reason.splitlines()[0][:200]}" if reason else ""
        return self._message(overall, recent, last)

    def _message(self, overall: float, recent: float, last: str) -> str:
        """The one line a broken rule raises (`last`: "; last error: ..." or empty)."""
        return (f"the LLM failed {self.failures} of {self.requests} requests ({overall:.0%}; {recent:.0%} of the last "
                f"{len(self._recent)}), above --max-llm-failure-rate {self.max_failure_rate:g}: the results would be "
                f"fallbacks, not answers{last}")


def probe_backend(backend: Backend, timeout_s: float = 10.0) -> None:
    """Fail fast (LLMHealthError, one line) when `backend` is a remote endpoint that does not answer."""
    try:
        backend.probe(timeout_s)
    except LLMHealthError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever it is, nothing usable answers there
        where = backend.identity().get("base_url") or backend.identity().get("backend", "the backend")
        first = redact((str(error).splitlines() or [""])[0][:200], backend.secrets())
        raise LLMHealthError(f"the LLM at {where} failed its start-up check ({type(error).__name__}: {first})") from None
