"""Retries with exponential backoff and full jitter, a per-call deadline, and the one function that
decides which exceptions are worth retrying, shared by every backend."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from typing import Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .protocol import TransientBackendError

T = TypeVar("T")

try:  # the endpoint clients are optional extras; without them their errors cannot occur
    import httpx
except ImportError:  # pragma: no cover - httpx comes with openai
    httpx = None
try:
    import openai
except ImportError:  # pragma: no cover - openai is in the llm extra
    openai = None


class RetryPolicy(BaseModel):
    """How often and how patiently a failing call is retried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(4, ge=1, le=20, description="Attempts per call, the first included.")
    base_delay_s: float = Field(0.5, ge=0.0, description="Backoff before the 2nd attempt; doubles each time.")
    max_delay_s: float = Field(8.0, ge=0.0, description="Cap on one backoff.")
    jitter: float = Field(1.0, ge=0.0, le=1.0, description="Fraction of each delay drawn at random (1 = full jitter).")

    def delay(self, retry_index: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**retry_index))
        return ceiling * (1.0 - self.jitter) + ceiling * self.jitter * rng.random()


class CallTimeout(TransientBackendError):
    """The call did not finish within its per-call timeout."""


def is_transient(exc: BaseException) -> bool:
    """True for faults a retry can fix: timeouts, connection errors, HTTP 429 and 5xx, garbled bodies."""
    if isinstance(exc, (TransientBackendError, TimeoutError, ConnectionError)):
        return True
    if openai is not None:
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
            return True
        if isinstance(exc, openai.InternalServerError):
            return True
        if isinstance(exc, openai.APIResponseValidationError):
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code == 429 or exc.status_code >= 500
    if httpx is not None and isinstance(exc, (httpx.TimeoutException, httpx.TransportError, httpx.DecodingError)):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    # A 200 response whose body is not JSON surfaces as a JSON error from inside the client.
    return type(exc).__name__ == "JSONDecodeError"


def is_refusal(exc: BaseException, feature_words: tuple[str, ...] = ()) -> bool:
    """The server refused the request's shape (an unsupported feature), as opposed to a passing fault.

    HTTP 400/404/415/422 always count; a 5xx counts only when its message names one of
    ``feature_words`` (llama.cpp's server answers an unknown ``response_format`` with a 500).
    """
    status = getattr(exc, "status_code", None)
    if status in (400, 404, 415, 422):
        return True
    if isinstance(status, int) and status >= 500 and feature_words:
        text = str(exc).lower()
        return any(word in text for word in feature_words)
    return False


class Deadline:
    """Runs calls on worker threads and stops waiting for them after ``timeout_s``.

    A call that overruns keeps its worker until the backend returns (Python threads cannot be
    killed); backends also receive the timeout so that HTTP clients abort natively.
    """

    def __init__(self, workers: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-call")

    def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CallTimeout(f"no answer within {timeout_s:g} s") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    rng: random.Random,
    *,
    on_failure: Callable[[BaseException, bool], None],
    sleep: Callable[[float], None] = time.sleep,
    rng_lock: threading.Lock | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a permanent error occurs, or attempts run out.

    ``on_failure(exc, will_retry)`` is told of every failed attempt (for accounting and logs).
    The last exception is re-raised when no attempt succeeded.
    """
    for attempt in range(policy.max_attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified right below
            will_retry = is_transient(exc) and attempt + 1 < policy.max_attempts
            on_failure(exc, will_retry)
            if not will_retry:
                raise
            if rng_lock is None:
                pause = policy.delay(attempt, rng)
            else:
                with rng_lock:
                    pause = policy.delay(attempt, rng)
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
