"""The contracts of the LLM layer.

Two contracts, one above the other:

* :class:`ChatModel` is what the rest of recarena talks to (simulated users, the LLM
  recommender, prompt optimisers). It is implemented once, by :class:`recarena.agents.llm.LLM`,
  which adds the cache, retries, timeouts, repair/fallback and accounting around a backend.
* :class:`Backend` is what a model provider implements: two plain, synchronous, uncached calls.
  ``complete`` returns raw text (JSON text when a schema is given); ``score_options`` returns the
  log-probability of each short option as the assistant's next answer. A backend raises
  :class:`TransientBackendError` for faults worth retrying (timeouts, connection errors, 429, 5xx)
  and :class:`ScoringUnsupported` when it cannot read log-probabilities (the layer then falls back
  to a constrained short generation). Everything else is the caller's mistake or a permanent error.

Messages are OpenAI-style dicts: ``{"role": "system" | "user" | "assistant", "content": str}``.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

ROLES = ("system", "user", "assistant")

Message = Mapping[str, str]


class LLMError(Exception):
    """Base class of errors raised by the LLM layer."""


class LLMSpecError(LLMError, ValueError):
    """A bad LLM setting (an unknown backend spec, a refused adapter, a missing model file): bad input, one line."""


class TransientBackendError(LLMError):
    """A fault worth retrying: timeout, connection refused/reset, HTTP 429 or 5xx, garbled body."""


class ScoringUnsupported(LLMError):
    """No usable log-probabilities: never for this backend (``permanent``) or just for this request."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class SamplingParams(BaseModel):
    """Sampling parameters of one request; all of them are part of the cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy and deterministic.")
    max_tokens: int = Field(128, ge=1, le=8192, description="Upper bound on generated tokens per answer.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int = Field(0, description="Sampling seed, so that a run is reproducible even with temperature > 0.")
    # Decoding settings against degenerate free text (see recarena.agents.llm.text.FREE_TEXT). None or
    # empty means "the backend's own default": nothing is sent, and the cache key does not name them, so
    # the keys of requests that never set them stay what they were before these fields existed.
    repeat_penalty: float | None = Field(None, ge=1.0, le=2.0, description="llama.cpp-style penalty on recently generated tokens.")
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="OpenAI-style penalty growing with a token's count so far.")
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="OpenAI-style penalty on any token already generated.")
    min_tokens: int = Field(0, ge=0, le=512, description="No end of answer before this many tokens (free text only).")
    stop: tuple[str, ...] = Field((), max_length=4, description="Strings that end the answer where they first appear.")

    def cache_fields(self) -> dict[str, Any]:
        """What the cache key holds: every field, except decoding settings left at "the backend's default"."""
        values = self.model_dump()
        for name in _DECODING_FIELDS:
            if values[name] in (None, 0, ()):
                del values[name]
        return values


_DECODING_FIELDS = ("repeat_penalty", "frequency_penalty", "presence_penalty", "min_tokens", "stop")


def normalise_messages(messages: Sequence[Message] | str) -> tuple[dict[str, str], ...]:
    """Validate messages at the edge; a bare string becomes one user message."""
    if isinstance(messages, str):
        return ({"role": "user", "content": messages},)
    out = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{index}].role must be one of {ROLES}, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"messages[{index}].content must be a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if not out:
        raise ValueError("messages must not be empty")
    return tuple(out)


@dataclass(frozen=True)
class ChatRequest:
    """One chat call as a backend sees it. ``json_schema`` is None for free text."""

    messages: tuple[dict[str, str], ...]
    params: SamplingParams
    json_schema: dict[str, Any] | None = None
    schema_name: str = "answer"


@dataclass(frozen=True)
class ScoreRequest:
    """Score each of a few short ``options`` as the assistant's complete next answer."""

    messages: tuple[dict[str, str], ...]
    options: tuple[str, ...]
    params: SamplingParams


@dataclass(frozen=True)
class RawCompletion:
    """What a backend returns for :meth:`Backend.complete`."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class RawScore:
    """Per-option log-probabilities (``-inf`` where the model gave an option no mass)."""

    logprobs: dict[str, float]
    method: str  # "logprobs" (one forward pass) or "generation" (constrained short answer)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatReply:
    """The answer to :meth:`ChatModel.chat`.

    ``parsed`` is the validated object (a pydantic instance, or a dict for a JSON-schema dict) when a
    schema was given, the caller's fallback when validation failed twice, and None for free text.
    ``ok`` is False exactly when a fallback was used; ``error`` then says why.
    """

    text: str
    parsed: Any = None
    ok: bool = True
    cached: bool = False
    repaired: bool = False
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_id: str = ""
    """The request's cache key: names this call in the cache and in the event store."""


@dataclass(frozen=True)
class ScoreReply:
    """The answer to :meth:`ChatModel.score`: probabilities over the options, summing to 1."""

    probabilities: dict[str, float]
    logprobs: dict[str, float] = field(default_factory=dict)
    method: str = "logprobs"
    ok: bool = True
    cached: bool = False
    error: str | None = None
    call_id: str = ""
    """The request's cache key: names this call in the cache and in the event store."""

    @property
    def best(self) -> str:
        """The most likely option (ties: the first listed)."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def mass(self) -> float:
        """Total probability the model put on the options before renormalising (1.0 for generation)."""
        return sum(math.exp(v) for v in self.logprobs.values() if v > -math.inf)


@runtime_checkable
class ChatModel(Protocol):
    """What recarena components call. See :func:`recarena.agents.llm.check_llm`."""

    def chat(self, messages: Sequence[Message] | str, schema: Any = None, **kwargs: Any) -> ChatReply: ...

    def score(self, messages: Sequence[Message] | str, options: Sequence[str], **kwargs: Any) -> ScoreReply: ...

    def chat_many(self, requests: Sequence[Sequence[Message] | str], schema: Any = None, **kwargs: Any) -> list[ChatReply]: ...

    def score_many(self, requests: Sequence[Sequence[Message] | str], options: Sequence[str], **kwargs: Any) -> list[ScoreReply]: ...

    async def achat(self, messages: Sequence[Message] | str, schema: Any = None, **kwargs: Any) -> ChatReply: ...

    async def ascore(self, messages: Sequence[Message] | str, options: Sequence[str], **kwargs: Any) -> ScoreReply: ...


class Backend(abc.ABC):
    """A model provider. Subclasses implement ``complete`` and ``score_options``.

    Contract:
    * both calls are synchronous, uncached and may be called from several threads at once up to
      ``max_concurrency`` (the layer never exceeds it);
    * ``timeout_s`` is honoured natively where the transport allows it (the layer also enforces it);
    * ``identity()`` names the model for the cache key and reports and holds no secret;
    * ``secrets()`` lists strings (API keys) that must never appear in cache, logs or reports.
    """

    name: str = "backend"
    max_concurrency: int = 4

    @abc.abstractmethod
    def identity(self) -> dict[str, str]:
        """Backend kind, model name and anything else that changes answers (never a key)."""

    @abc.abstractmethod
    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        """Generate one answer; JSON text conforming to ``request.json_schema`` when given."""

    @abc.abstractmethod
    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        """Log-probability of each option; raise ScoringUnsupported if unavailable."""

    @property
    def model(self) -> str:
        """The model name used in reports and the price table."""
        return self.identity().get("model", "unknown")

    def secrets(self) -> list[str]:
        """Strings that must be redacted everywhere; none by default."""
        return []

    def probe(self, timeout_s: float) -> None:
        """Raise if the model cannot be reached at all (a cheap request to a remote endpoint).

        In-process backends have nothing to reach: the default does nothing."""

    def close(self) -> None:
        """Release resources (connections, model memory)."""
