""":class:`LLM`: the one implementation of :class:`ChatModel`, wrapping any :class:`Backend` with
the cache, bounded concurrency, per-call timeout, retries, validation with one repair attempt,
caller-chosen fallbacks and accounting. Backends stay small because all of this lives here once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import json
import logging
import math
import random
import threading
import time
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from .accounting import Accountant, redact
from .cache import SQLiteCache, cache_key
from .ratelimit import RateLimiter
from .protocol import (
    Backend, ChatReply, ChatRequest, Message, RawCompletion, RawScore, SamplingParams, ScoreReply,
    ScoreRequest, ScoringUnsupported, TransientBackendError, normalise_messages,
)
from .retry import CallTimeout, Deadline, RetryPolicy, call_with_retry
from .schema import AnswerInvalid, Schema
from .scoring import normalise, score_by_generation, validate_options

log = logging.getLogger("recarena.agents.llm")

Fallback = Any  # a value, or a callable(raw_answer: str, reason: str) -> value


class _Shared:
    """State shared by an LLM and its per-component views."""

    def __init__(self, backend: Backend, concurrency: int, seed: int, limiter: RateLimiter) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.limiter = limiter
        self.deadline = Deadline(concurrency)
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.logprobs_unsupported = False


class LLM:
    """A production wrapper around a backend; see the module docstring and :class:`ChatModel`.

    Every public call returns a reply and never raises for model or transport faults: after the
    retries and the single repair attempt it returns the caller's ``fallback`` with ``ok=False``,
    counted in :attr:`accountant` and logged with the raw answer. Invalid arguments raise at once.
    The one fault that does raise is :class:`LLMHealthError`, when the accountant carries a
    :class:`HealthRule` and the share of fallbacks passes it (a run must not report guesses as answers).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        cache: SQLiteCache | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        concurrency: int | None = None,
        params: SamplingParams | None = None,
        accountant: Accountant | None = None,
        component: str = "default",
        seed: int = 0,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.backend = backend
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.concurrency = min(concurrency or backend.max_concurrency, backend.max_concurrency)
        self.params = params or SamplingParams(seed=seed)
        self.accountant = accountant or Accountant()
        self.accountant.secrets.extend(s for s in backend.secrets() if s not in self.accountant.secrets)
        self.component = component
        self.progress = progress
        self._sleep = sleep
        self._shared = _Shared(backend, self.concurrency, seed, rate_limiter or RateLimiter())
        self._identity = backend.identity()

    # ----------------------------------------------------------------- views and plumbing
    def for_component(self, component: str) -> "LLM":
        """A view that books its usage under ``component`` and shares everything else."""
        view = copy.copy(self)
        view.component = component
        return view

    def _params(self, params: SamplingParams | dict[str, Any] | None) -> SamplingParams:
        if params is None:
            return self.params
        if isinstance(params, SamplingParams):
            return params
        return self.params.model_copy(update=SamplingParams.model_validate({**self.params.model_dump(), **params}).model_dump())

    def _invoke(self, call: Callable[[float], Any], component: str) -> Any:
        """One backend call under the concurrency bound, deadline and retry policy."""
        secrets = self.accountant.secrets

        def attempt() -> Any:
            self._shared.limiter.acquire()
            if not self._shared.slots.acquire(timeout=self.timeout_s):
                raise CallTimeout(f"no free backend slot within {self.timeout_s:g} s")
            started = time.perf_counter()

            def work() -> Any:
                try:
                    return call(self.timeout_s)
                finally:
                    self._shared.slots.release()

            try:
                return self._shared.deadline.run(work, self.timeout_s)
            finally:
                self.accountant.record(component, calls=1, wall_s=time.perf_counter() - started)

        def on_failure(exc: BaseException, will_retry: bool) -> None:
            if isinstance(exc, (ScoringUnsupported, AnswerInvalid)):
                return  # not a transport fault; handled by the caller
            self.accountant.record(component, failures=1, retries=int(will_retry))
            log.info("LLM call failed (%s): %s%s", type(exc).__name__, redact(str(exc), secrets)[:300],
                     "; retrying" if will_retry else "; giving up")

        return call_with_retry(attempt, self.retry, self._shared.rng, on_failure=on_failure, sleep=self._sleep,
                               rng_lock=self._shared.rng_lock)

    def _book_tokens(self, component: str, raw: RawCompletion | RawScore) -> None:
        self._shared.limiter.charge((raw.prompt_tokens or 0) + (raw.completion_tokens or 0))
        self.accountant.record(component, model=self._identity.get("model"),
                               prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens)

    def _fallback_value(self, fallback: Fallback, raw: str, reason: str) -> Any:
        return fallback(raw, reason) if callable(fallback) and not isinstance(fallback, type) else fallback

    def _key(self, kind: str, **payload: Any) -> str:
        return cache_key({"kind": kind, "backend": self._identity, **payload})

    # ----------------------------------------------------------------- chat
    def chat(
        self,
        messages: Sequence[Message] | str,
        schema: Any = None,
        *,
        fallback: Fallback = None,
        params: SamplingParams | dict[str, Any] | None = None,
        component: str | None = None,
    ) -> ChatReply:
        """Free text, or (with ``schema``) an object validated against a pydantic model / JSON schema."""
        msgs = normalise_messages(messages)
        spec = Schema.of(schema) if schema is not None else None
        sampling = self._params(params)
        key = self._key("chat", messages=msgs, schema=spec.json_schema if spec else None, params=sampling.cache_fields())
        reply = self._chat(msgs, spec, sampling, key, fallback, component or self.component)
        self.accountant.answered(component or self.component, reply.ok, reply.error or "")  # LLMHealthError when fallbacks pass the run's limit
        return dataclasses.replace(reply, call_id=key)

    def _chat(self, msgs, spec, sampling, key: str, fallback: Fallback, component: str) -> ChatReply:
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    parsed = spec.validate_text(hit["text"]) if spec else None
                    self.accountant.record(component, cache_hits=1)
                    return ChatReply(hit["text"], parsed, cached=True, repaired=hit.get("repaired", False))
                except AnswerInvalid:
                    log.warning("cached answer no longer validates; asking the model again")
            self.accountant.record(component, cache_misses=1)

        def ask(conversation: tuple[dict[str, str], ...]) -> RawCompletion:
            request = ChatRequest(conversation, sampling, spec.json_schema if spec else None,
                                  spec.name if spec else "answer")
            raw = self._invoke(lambda t: self.backend.complete(request, t), component)
            self._book_tokens(component, raw)
            return raw

        try:
            raw = ask(msgs)
        except Exception as exc:  # noqa: BLE001 - transport gave up: the caller's fallback
            return self._chat_fallback(component, fallback, "", f"{type(exc).__name__}: {exc}")
        if spec is None:
            if self.cache is not None:
                self.cache.put(key, "chat", {"text": raw.text})
            return ChatReply(raw.text, None, prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens)
        try:
            parsed = spec.validate_text(raw.text)
            repaired, final = False, raw
        except AnswerInvalid as first_error:
            self.accountant.record(component, repairs=1)
            conversation = msgs + ({"role": "assistant", "content": raw.text}, spec.repair_message(str(first_error)))
            try:
                final = ask(conversation)
                parsed, repaired = spec.validate_text(final.text), True
            except AnswerInvalid as second_error:
                return self._chat_fallback(component, fallback, final.text,
                                           f"invalid after repair: {second_error} (first: {first_error})")
            except Exception as exc:  # noqa: BLE001
                return self._chat_fallback(component, fallback, raw.text, f"repair failed: {type(exc).__name__}: {exc}")
        if self.cache is not None:
            self.cache.put(key, "chat", {"text": final.text, "repaired": repaired})
        return ChatReply(final.text, parsed, repaired=repaired, prompt_tokens=final.prompt_tokens,
                         completion_tokens=final.completion_tokens)

    def _chat_fallback(self, component: str, fallback: Fallback, raw: str, reason: str) -> ChatReply:
        self.accountant.fallback(component, "chat", reason, raw)
        secrets = self.accountant.secrets
        return ChatReply(raw, self._fallback_value(fallback, raw, reason), ok=False, error=redact(reason, secrets))

    # ----------------------------------------------------------------- score
    def score(
        self,
        messages: Sequence[Message] | str,
        options: Sequence[str],
        *,
        fallback: Fallback = None,
        params: SamplingParams | dict[str, Any] | None = None,
        component: str | None = None,
    ) -> ScoreReply:
        """Probability of each short option as the assistant's answer (fallback: uniform by default)."""
        msgs = normalise_messages(messages)
        opts = validate_options(options)
        sampling = self._params(params)
        key = self._key("score", messages=msgs, options=list(opts), params=sampling.cache_fields())
        reply = self._score(msgs, opts, sampling, key, fallback, component or self.component)
        self.accountant.answered(component or self.component, reply.ok, reply.error or "")  # LLMHealthError when fallbacks pass the run's limit
        return dataclasses.replace(reply, call_id=key)

    def _score(self, msgs, opts, sampling, key: str, fallback: Fallback, component: str) -> ScoreReply:
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.accountant.record(component, cache_hits=1)
                logprobs = {o: (-math.inf if v is None else v) for o, v in hit["logprobs"].items()}
                return ScoreReply(normalise(logprobs), logprobs, hit["method"], cached=True)
            self.accountant.record(component, cache_misses=1)
        request = ScoreRequest(msgs, opts, sampling)
        raw: RawScore | None = None
        reason = ""
        if not self._shared.logprobs_unsupported:
            try:
                raw = self._invoke(lambda t: self.backend.score_options(request, t), component)
            except ScoringUnsupported as exc:
                log.info("backend %s cannot score this by log-probabilities (%s); using constrained generation",
                         self._identity.get("backend"), exc)
                self._shared.logprobs_unsupported = exc.permanent
            except Exception as exc:  # noqa: BLE001
                reason = f"{type(exc).__name__}: {exc}"
        if raw is None and not reason:
            self.accountant.record(component, score_by_generation=1)
            try:
                raw = self._invoke(lambda t: score_by_generation(self.backend, request, t), component)
            except AnswerInvalid as exc:
                self.accountant.record(component, repairs=1)
                try:  # the repair attempt for a constrained answer is simply asking once more
                    raw = self._invoke(lambda t: score_by_generation(self.backend, request, t), component)
                except Exception as exc2:  # noqa: BLE001
                    reason = f"no valid option after repair: {exc2} (first: {exc})"
            except Exception as exc:  # noqa: BLE001
                reason = f"{type(exc).__name__}: {exc}"
        if raw is None:
            self.accountant.fallback(component, "score", reason, "")
            value = self._fallback_value(fallback, "", reason)
            probabilities = dict(value) if value is not None else {o: 1.0 / len(opts) for o in opts}
            return ScoreReply(probabilities, {}, "fallback", ok=False, error=redact(reason, self.accountant.secrets))
        self._book_tokens(component, raw)
        if self.cache is not None:
            self.cache.put(key, "score", {"logprobs": raw.logprobs, "method": raw.method})
        return ScoreReply(normalise(raw.logprobs), dict(raw.logprobs), raw.method)

    # ----------------------------------------------------------------- batches and async
    def _many(self, fn: Callable[..., Any], requests: Sequence[Any], desc: str, **kwargs: Any) -> list[Any]:
        requests = list(requests)
        # Similar prompts next to each other let in-process backends reuse their prompt prefix.
        order = sorted(range(len(requests)), key=lambda i: json.dumps(requests[i], sort_keys=True, default=str))
        results: list[Any] = [None] * len(requests)
        bar = tqdm(total=len(requests), desc=desc, disable=not self.progress or len(requests) < 8, leave=False)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="llm-batch") as pool:
            futures = {pool.submit(fn, requests[i], **kwargs): i for i in order}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        bar.close()
        return results

    def chat_many(self, requests: Sequence[Sequence[Message] | str], schema: Any = None, **kwargs: Any) -> list[ChatReply]:
        """:meth:`chat` over many conversations, up to ``concurrency`` at once; results in input order."""
        return self._many(self.chat, requests, "llm chat", schema=schema, **kwargs)

    def score_many(self, requests: Sequence[Sequence[Message] | str], options: Sequence[str], **kwargs: Any) -> list[ScoreReply]:
        """:meth:`score` over many conversations, up to ``concurrency`` at once; results in input order."""
        return self._many(self.score, requests, "llm score", options=options, **kwargs)

    async def achat(self, messages: Sequence[Message] | str, schema: Any = None, **kwargs: Any) -> ChatReply:
        """:meth:`chat` without blocking the event loop; the concurrency bound still applies."""
        return await asyncio.to_thread(self.chat, messages, schema, **kwargs)

    async def ascore(self, messages: Sequence[Message] | str, options: Sequence[str], **kwargs: Any) -> ScoreReply:
        """:meth:`score` without blocking the event loop; the concurrency bound still applies."""
        return await asyncio.to_thread(self.score, messages, options, **kwargs)

    async def achat_many(self, requests: Sequence[Sequence[Message] | str], schema: Any = None, **kwargs: Any) -> list[ChatReply]:
        """Async :meth:`chat_many`."""
        return await asyncio.to_thread(self.chat_many, requests, schema, **kwargs)

    async def ascore_many(self, requests: Sequence[Sequence[Message] | str], options: Sequence[str], **kwargs: Any) -> list[ScoreReply]:
        """Async :meth:`score_many`."""
        return await asyncio.to_thread(self.score_many, requests, options, **kwargs)

    def close(self) -> None:
        """Release the backend, the worker threads and this thread's cache connection."""
        self._shared.deadline.close()
        self.backend.close()
        if self.cache is not None:
            self.cache.close()

    def __repr__(self) -> str:
        return f"LLM({self._identity}, component={self.component!r}, concurrency={self.concurrency})"


__all__ = ["LLM", "TransientBackendError"]
