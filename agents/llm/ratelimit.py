"""Requests- and tokens-per-minute limits for a shared endpoint (hosted APIs and vLLM servers set both).

Two token buckets refill continuously at their per-minute rate and hold at most one minute's worth.
A call waits until the request bucket has one request and the token bucket is not in debt; after
the call its real token count is charged, so the token bucket may go negative (a debt the next
callers wait out) instead of guessing a prompt's size up front. Thread-safe; the clock and the
sleep are injectable so tests run in simulated time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Holds callers back to ``requests_per_minute`` calls and ``tokens_per_minute`` tokens (None: no limit)."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._requests = float(requests_per_minute or 0.0)
        self._tokens = float(tokens_per_minute or 0.0)
        self._last = clock()
        self.waited_s = 0.0
        """Total time callers spent waiting for the limits (for the throughput reports)."""

    @property
    def active(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        if self.requests_per_minute is not None:
            self._requests = min(self.requests_per_minute, self._requests + elapsed * self.requests_per_minute / 60.0)
        if self.tokens_per_minute is not None:
            self._tokens = min(self.tokens_per_minute, self._tokens + elapsed * self.tokens_per_minute / 60.0)

    def acquire(self) -> None:
        """Wait until one more request fits in both limits, then take it."""
        if not self.active:
            return
        while True:
            with self._lock:
                self._refill(self._clock())
                need = 0.0
                if self.requests_per_minute is not None and self._requests < 1.0:
                    need = max(need, (1.0 - self._requests) * 60.0 / self.requests_per_minute)
                if self.tokens_per_minute is not None and self._tokens < 0.0:
                    need = max(need, -self._tokens * 60.0 / self.tokens_per_minute)
                if need <= 0.0:
                    if self.requests_per_minute is not None:
                        self._requests -= 1.0
                    return
                self.waited_s += need
            self._sleep(need)

    def charge(self, tokens: int) -> None:
        """Book `tokens` used by a finished call against the token limit."""
        if self.tokens_per_minute is None or tokens <= 0:
            return
        with self._lock:
            self._refill(self._clock())
            self._tokens -= tokens
