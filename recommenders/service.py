"""A recommender that lives behind an HTTP endpoint: the system under test as a service, an arm like any model.

    rec = HttpRecommender(url="http://127.0.0.1:8000/recommend").fit(split.train_dataset())  # trains nothing
    page = rec.recommend(users, k=10, exclude=per_user_exclusions)                          # one POST per user

The JSON contract (docs/service.md says it in full):

* ``GET URL`` is the health check: any 2xx answer means up. A JSON object may name ``n_items`` (and
  ``n_users``); when it does, `fit` refuses a dataset of another size (a service serving other data).
* ``POST URL`` with ``{"user", "k", "history": [{"item", "timestamp"}...], "exclude": [...],
  "candidates": [...] | null, "pages": [[{"item", "watched", "rating"}...]...]}`` answers
  ``{"items": [...], "scores"?: [...], "propensities"?: [...]}``: at most ``k`` distinct known item ids,
  best first, none excluded, only candidates when given, and ``min(k, allowed)`` of them.

`HttpRecommender` learns nothing: `fit` and `update` only keep the histories it sends (with their
timestamps), which is also what the arena excludes as seen (`known_items`). Its calls go out
together (``concurrency`` at a time), each with a timeout and ``retries`` bounded retries on a
transport error, a timeout or a 5xx/408/429 answer; an answer that breaks the contract is a
`RecommenderError` at once (one line; retrying a wrong answer gives the same wrong answer). A call
still failing after its retries counts as a failure under the LLM's health rule
(`recarena.agents.llm.health.HealthRule`): the user gets no slate (its session ends, as on a page
that did not load) and the run stops with a `ServiceHealthError` once failures pass
``max_failure_rate`` of the calls; a failed call whose service no longer answers its health check
stops the run at once (a dead service). `CallLog` keeps the calls, failures, retries and latencies
the A/B test reports per arm.

The session engine sends the session's pages so far to a recommender that sets
``takes_session_pages`` (`recarena.simulator.exploration.build_slates`); other recommenders never see them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator

from recarena.agents.llm.health import DEFAULT_MAX_FAILURE_RATE, HealthRule
from recarena.simulator.data import Dataset
from recarena.simulator.data.dataset import per_user

from .base import Exclude, ItemSets, Recommendations, Recommender
from .errors import RecommenderError, ServiceHealthError
from .params import Params

_RETRYABLE_STATUS = {408, 429}


def is_service_url(text: str) -> bool:
    """Whether an arm or model name is a service's address rather than a registry name."""
    return text.strip().lower().startswith(("http://", "https://"))


def check_service_url(url: str) -> str:
    """`url` when it is a usable endpoint address (http(s), a host, a valid port, no credentials); one-line
    RecommenderError naming the problem otherwise."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise RecommenderError(f"service URL {url!r}: must start with http:// or https://")
    try:
        port = parsed.port
    except ValueError:
        raise RecommenderError(f"service URL {url!r}: the port is not a number in 0..65535") from None
    if not parsed.hostname:
        raise RecommenderError(f"service URL {url!r}: names no host (http://HOST:PORT/PATH)")
    if parsed.username is not None or parsed.password is not None:
        raise RecommenderError(f"service URL {url!r}: credentials in the URL would be written into the run's files; not supported")
    if port == 0:
        raise RecommenderError(f"service URL {url!r}: port 0 is not an address to call")
    if any(c.isspace() or c == "," for c in url.strip()):
        raise RecommenderError(f"service URL {url!r}: holds a space or a comma")
    return url.strip()


@dataclass(frozen=True)
class ShownItem:
    """One item of a page shown earlier in the session, as the service reads it in ``pages``; `recommend` reads any
    object with these three attributes (the session engine passes the users' own ``ItemReaction``)."""

    item: int
    watched: bool
    rating: int | None = None


@dataclass(frozen=True)
class ServedRecommendations(Recommendations):
    """`Recommendations` with the service's propensities: ``propensities[u, r]``, the probability with which its
    policy put ``items[u, r]`` at rank r (1 where it said nothing; None when no answer had any)."""

    propensities: np.ndarray | None = None


class ServiceParams(Params):
    """Where the service is and how the arena calls it."""

    url: str = Field(..., description="the endpoint, http://HOST:PORT/PATH (POST: a ranking; GET: the health check)")
    timeout_s: float = Field(10.0, gt=0, description="seconds one request may take before it counts as failed")
    retries: int = Field(2, ge=0, le=10, description="retries of a request after a transport error, a timeout or a 5xx/408/429 answer")
    retry_wait_s: float = Field(0.2, ge=0, description="wait before the first retry (doubled before each next one)")
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight together (one per user of a batch)")
    max_failure_rate: float = Field(DEFAULT_MAX_FAILURE_RATE, ge=0, le=1, description="stop the run when more than this share of calls fail "
                                    "after their retries, over the first 20 or the last 100 (the LLM's health rule; 1: never)")  # fmt: skip

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        return check_service_url(url)


class ServiceHealthRule(HealthRule):
    """The LLM's health rule over a service's calls: its own error type and wording."""

    error_type: ClassVar[type[Exception]] = ServiceHealthError
    url: str = ""

    def _message(self, overall: float, recent: float, last: str) -> str:
        return (f"the recommender service at {self.url} failed {self.failures} of {self.requests} calls ({overall:.0%}; "
                f"{recent:.0%} of the last {len(self._recent)}), above its max_failure_rate {self.max_failure_rate:g}{last}")  # fmt: skip


@dataclass
class CallLog:
    """A service's calls so far (thread-safe): counts and each call's latency, retries and waits included."""

    calls: int = 0
    failures: int = 0
    retries: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency_ms: float, retries: int, failed: bool) -> None:
        with self._lock:
            self.calls += 1
            self.failures += int(failed)
            self.retries += retries
            self.latencies_ms.append(latency_ms)

    def mark(self) -> tuple[int, int, int]:
        """Where the log stands now; `since` reports the calls after it (one arm's sessions, say)."""
        with self._lock:
            return self.calls, self.failures, self.retries

    def since(self, mark: tuple[int, int, int] = (0, 0, 0)) -> dict[str, Any]:
        """The calls after `mark`: counts and latency mean / p50 / p95 / max in milliseconds (None without calls)."""
        with self._lock:
            calls, failures, retries = self.calls - mark[0], self.failures - mark[1], self.retries - mark[2]
            latencies = np.asarray(self.latencies_ms[mark[0] :], dtype=np.float64)
        figures = {"calls": calls, "failures": failures, "retries": retries}
        if not len(latencies):
            return figures | {"latency_ms": None}
        p50, p95 = np.percentile(latencies, [50, 95])
        return figures | {"latency_ms": {"mean": float(latencies.mean()), "p50": float(p50), "p95": float(p95), "max": float(latencies.max())}}


class _Transient(Exception):
    """A failed attempt that another attempt may fix (transport error, timeout, 5xx/408/429)."""


def _first_line(text: str, limit: int = 200) -> str:
    return (text.strip().splitlines() or [""])[0][:limit]


def probe_service(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The service's health answer (its JSON object, or {} when it sent none); a one-line RecommenderError when
    nothing usable answers ``GET url``."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise RecommenderError(f"the recommender service at {url} failed its start-up check (HTTP {error.code} to GET)") from None
    except (urllib.error.URLError, HTTPException, OSError) as error:
        cause = getattr(error, "reason", None) or error
        raise RecommenderError(f"the recommender service at {url} did not answer its start-up check ({type(cause).__name__}: "
                               f"{_first_line(str(cause))})") from None  # fmt: skip
    try:
        answer = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


class HttpRecommender(Recommender):
    """The recommender behind ``params.url`` (see the module docstring); fit and update keep histories, never train."""

    name = "service"
    Params = ServiceParams
    update_mode = "incremental"
    takes_session_pages: ClassVar[bool] = True
    """The session engine passes ``pages=`` (the session's pages so far) to `recommend`."""

    def __init__(self, params: Params | None = None, **overrides: Any):
        super().__init__(params, **overrides)
        self.url: str = self.params.url
        self.timestamps: list[np.ndarray] = []
        self._fresh_calls()

    # ------------------------------------------------------------------ contract
    def recommend(self, users: np.ndarray, k: int, exclude: Exclude = "seen", candidates: ItemSets = None,
                  history: Sequence[np.ndarray] | None = None, *, pages: Sequence[Sequence[Sequence[ShownItem]]] | None = None,
                  ) -> ServedRecommendations:  # fmt: skip
        """The service's top-`k` per user (the base contract), one request per user, `concurrency` in flight.

        `pages`: per user, the session's pages so far (the engine's; an empty list for each user when not given)."""
        users, known, banned, allowed = self._recommend_request(users, k, exclude, candidates, history)
        stamps = [self.timestamps[u] for u in users.tolist()] if history is None else [None] * len(users)
        if pages is not None and len(pages) != len(users):
            raise RecommenderError(f"{self.name}: pages has {len(pages)} rows for {len(users)} users")
        requests = [_request(int(u), k, known[r], stamps[r], banned[r] if banned is not None else None,
                             allowed[r] if allowed is not None else None, pages[r] if pages is not None else ())
                    for r, u in enumerate(users.tolist())]  # fmt: skip
        answers = self._call_all(requests)
        return _assemble(answers, k)

    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        health = probe_service(self.url, self.params.timeout_s)
        for what, size in (("n_items", dataset.n_items), ("n_users", dataset.n_users)):
            if isinstance(health.get(what), int) and health[what] != size:
                raise RecommenderError(f"the recommender service at {self.url} serves {what}={health[what]}, the data has {size}: "
                                       "it serves another dataset")  # fmt: skip
        self.timestamps = per_user(self.interactions, self.n_users, column="timestamp")

    def _update(self, new: pd.DataFrame) -> None:
        self.timestamps = per_user(self.interactions, self.n_users, column="timestamp")

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        """Every item's score: the service's full ranking of each user (its scores, or minus the rank without them)."""
        # the base class hands over the kept histories unless the caller gave its own (which come without timestamps)
        stamps = [self.timestamps[u] if np.array_equal(h, self.histories[u]) else None for u, h in zip(users.tolist(), history)]
        answers = self._call_all([_request(int(u), self.n_items, h, s, None, None, ()) for u, h, s in zip(users.tolist(), history, stamps)])
        out = torch.full((len(users), self.n_items), -torch.inf)
        for row, answer in enumerate(answers):
            if answer is not None:
                items, scores, _ = answer
                out[row, torch.as_tensor(items, dtype=torch.long)] = torch.as_tensor(scores, dtype=torch.float32)
        return out

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        self.timestamps = per_user(self.interactions, self.n_users, column="timestamp")

    def __getstate__(self) -> dict[str, Any]:
        # threads and locks do not travel: a copy starts its own pool, call log and health rule
        return {k: v for k, v in self.__dict__.items() if k not in ("_pool", "calls", "health")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fresh_calls()

    def _fresh_calls(self) -> None:
        self.calls = CallLog()
        self.health = ServiceHealthRule(self.params.max_failure_rate)
        self.health.url = self.url
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ calls
    def _call_all(self, requests: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        if len(requests) <= 1 or self.params.concurrency == 1:
            return [self._call(r) for r in requests]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.params.concurrency, thread_name_prefix="recarena-service")
        return list(self._pool.map(self._call, requests))

    def _call(self, request: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """One request with its retries: the checked answer, or None when it failed (counted by the health rule)."""
        if self.health.tripped is not None:
            raise ServiceHealthError(self.health.tripped)
        body = json.dumps(request).encode()
        started, wait, reason = time.perf_counter(), self.params.retry_wait_s, ""
        for attempt in range(self.params.retries + 1):
            if attempt:
                time.sleep(wait)
                wait *= 2
            try:
                raw = self._post(body)
            except _Transient as error:
                reason = str(error)
                continue
            answer = _read_answer(self.url, raw, request, self.n_items)
            self.calls.add((time.perf_counter() - started) * 1000, attempt, failed=False)
            self.health.observe(True)
            return answer
        self.calls.add((time.perf_counter() - started) * 1000, self.params.retries, failed=True)
        try:
            probe_service(self.url, min(self.params.timeout_s, 5.0))
        except RecommenderError:
            self.health.trip(f"the recommender service at {self.url} stopped answering after {self.calls.calls - self.calls.failures} "
                             f"good calls (its health check fails too; last error: {reason})")  # fmt: skip
        self.health.observe(False, reason)
        return None

    def _post(self, body: bytes) -> bytes:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.params.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            detail = _first_line(error.read().decode("utf-8", "replace")) if error.fp is not None else ""
            if error.code >= 500 or error.code in _RETRYABLE_STATUS:
                raise _Transient(f"HTTP {error.code} {detail}".strip()) from None
            raise RecommenderError(f"the recommender service at {self.url} refused a request (HTTP {error.code}"
                                   f"{': ' + detail if detail else ''})") from None  # fmt: skip
        except (urllib.error.URLError, HTTPException, OSError) as error:  # refused, reset, timed out, cut short
            cause = getattr(error, "reason", None) or error
            raise _Transient(f"{type(cause).__name__}: {_first_line(str(cause))}") from None


def _request(user: int, k: int, history: np.ndarray, stamps: np.ndarray | None, exclude: np.ndarray | None,
             candidates: np.ndarray | None, pages: Sequence[Sequence[ShownItem]]) -> dict[str, Any]:  # fmt: skip
    """One user's request body (the contract in docs/service.md)."""
    times = [None] * len(history) if stamps is None else np.asarray(stamps).tolist()
    return {
        "user": user, "k": int(k),
        "history": [{"item": int(i), "timestamp": None if t is None else int(t)} for i, t in zip(np.asarray(history).tolist(), times)],
        "exclude": np.unique(exclude).tolist() if exclude is not None else [],
        "candidates": np.unique(candidates).tolist() if candidates is not None else None,
        "pages": [[{"item": int(s.item), "watched": bool(s.watched), "rating": None if s.rating is None else int(s.rating)} for s in page]
                  for page in pages],
    }  # fmt: skip


def _read_answer(url: str, raw: bytes, request: dict[str, Any], n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(items, scores, propensities)`` of one answer; a one-line RecommenderError naming what breaks the contract."""
    where = f"the recommender service at {url} (user {request['user']})"
    try:
        answer = json.loads(raw)
    except ValueError:
        raise RecommenderError(f"{where} answered something that is not JSON: {_first_line(raw.decode('utf-8', 'replace'), 80)!r}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
        raise RecommenderError(f"{where} answered without an 'items' list (expected {{\"items\": [ids...]}})")
    items = answer["items"]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        raise RecommenderError(f"{where} answered items that are not all whole numbers")
    k = request["k"]
    if len(items) > k:
        raise RecommenderError(f"{where} answered {len(items)} items for k={k}")
    unknown = [i for i in items if not 0 <= i < n_items]
    if unknown:
        raise RecommenderError(f"{where} answered the unknown item id {unknown[0]} (ids are 0..{n_items - 1})")
    if len(set(items)) != len(items):
        raise RecommenderError(f"{where} answered an item twice: {next(i for i in items if items.count(i) > 1)}")
    excluded = set(request["exclude"]).intersection(items)
    if excluded:
        raise RecommenderError(f"{where} answered the item {min(excluded)}, which the request excluded")
    allowed = set(range(n_items)) if request["candidates"] is None else set(request["candidates"])
    outside = set(items) - allowed
    if outside:
        raise RecommenderError(f"{where} answered the item {min(outside)}, which is not one of the request's candidates")
    wanted = min(k, len(allowed - set(request["exclude"])))
    if len(items) < wanted:
        raise RecommenderError(f"{where} answered {len(items)} items where {wanted} were asked for and allowed")
    scores = _numbers(where, answer, "scores", len(items))
    if scores is None:
        scores = -np.arange(len(items), dtype=np.float32)  # the order is all there is: minus the rank
    elif len(scores) > 1 and (np.diff(scores) > 1e-6 * (1 + np.abs(scores[:-1]))).any():
        raise RecommenderError(f"{where} answered scores that increase down its ranking (best first, non-increasing)")
    propensities = _numbers(where, answer, "propensities", len(items))
    if propensities is not None and ((propensities <= 0) | (propensities > 1)).any():
        raise RecommenderError(f"{where} answered a propensity outside (0, 1]")
    return np.asarray(items, dtype=np.int64), scores.astype(np.float32), propensities


def _numbers(where: str, answer: dict[str, Any], key: str, n: int) -> np.ndarray | None:
    values = answer.get(key)
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise RecommenderError(f"{where} answered '{key}' that is not a list of {n} numbers, one per item")
    out = np.asarray(values, dtype=np.float64)
    if not np.isfinite(out).all():
        raise RecommenderError(f"{where} answered '{key}' that are not all finite")
    return out


def _assemble(answers: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None], k: int) -> ServedRecommendations:
    """The answers as padded ``[users, k]`` arrays (a failed call: a row of -1, no slate for that user)."""
    items = np.full((len(answers), k), -1, dtype=np.int64)
    scores = np.full((len(answers), k), -np.inf, dtype=np.float32)
    propensities = np.ones((len(answers), k), dtype=np.float64)
    any_propensities = False
    for row, answer in enumerate(answers):
        if answer is None:
            continue
        got, values, chances = answer
        items[row, : len(got)], scores[row, : len(got)] = got, values
        if chances is not None:
            propensities[row, : len(got)], any_propensities = chances, True
    return ServedRecommendations(items, scores, propensities if any_propensities else None)
