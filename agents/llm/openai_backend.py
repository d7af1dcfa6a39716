"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server, Ollama, ...) through the
official ``openai`` client.

Structured output: ``response_format`` of type ``json_schema`` where the server accepts it; else
llama.cpp's ``json_object`` + ``schema`` extension; else the schema in the prompt (the layer
validates and repairs either way). The first mode a server accepts is remembered.
Scoring: ``logprobs``/``top_logprobs`` of a one-token answer where the server returns them; else
the layer falls back to a constrained short generation.
The client's own retries are switched off: the layer's retry policy is the only one.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

from .protocol import Backend, ChatRequest, LLMError, RawCompletion, RawScore, ScoreRequest, ScoringUnsupported
from .retry import is_refusal
from .schema import with_schema_instruction
from .scoring import options_from_top_tokens

StructuredMode = Literal["auto", "json_schema", "json_object_schema", "prompt"]
_MODES_IN_ORDER = ("json_schema", "json_object_schema", "prompt")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers need no key, but the client insists on one; this placeholder is not a secret.
NO_KEY = "sk-no-key-required"


_FEATURE_WORDS = ("response_format", "json_schema", "logprobs", "not supported", "unsupported")


def _rejected(exc: BaseException) -> bool:
    return is_refusal(exc, _FEATURE_WORDS)


class OpenAIBackend(Backend):
    """Chat completions against ``base_url`` with ``model``; key from argument or $OPENAI_API_KEY."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        structured_mode: StructuredMode = "auto",
        max_concurrency: int = 8,
        top_logprobs: int = 20,
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - only without the extra
            raise LLMError("the endpoint backend needs the 'openai' package: pip install 'recarena[llm]'") from exc
        if not model:
            raise ValueError("openai backend: model name must not be empty")
        self._model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or NO_KEY
        self.max_concurrency = max_concurrency
        self.top_logprobs = top_logprobs
        self._mode_lock = threading.Lock()
        self._mode: str | None = None if structured_mode == "auto" else structured_mode
        self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0)

    def identity(self) -> dict[str, str]:
        return {"backend": self.name, "model": self._model, "base_url": self.base_url}

    def secrets(self) -> list[str]:
        return [] if self._api_key == NO_KEY else [self._api_key]

    def probe(self, timeout_s: float) -> None:
        """List the endpoint's models: cheap, and every OpenAI-compatible server has it."""
        import openai

        try:
            self._client.models.list(timeout=timeout_s)
        except openai.NotFoundError:
            return  # something answers; it just lists no models
        except openai.APIStatusError as error:
            if error.status_code in (401, 403):
                raise
            return  # any other HTTP answer: a server is there; the health rule judges its replies

    # ----------------------------------------------------------------- chat
    def _create(self, request: ChatRequest, timeout_s: float, mode: str | None, **extra: Any) -> Any:
        params = request.params
        messages: list[dict[str, str]] = [dict(m) for m in request.messages]
        if request.json_schema is not None:
            if mode == "json_schema":
                extra["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name[:64] or "answer", "schema": request.json_schema},
                }
            elif mode == "json_object_schema":
                extra["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                messages = with_schema_instruction(request.messages, request.json_schema)
        # Only the anti-repetition settings OpenAI's API itself defines: an unknown field (llama.cpp's
        # repeat_penalty, vLLM's min_tokens) makes it refuse the whole request, and these two do that work.
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(params, name) is not None:
                extra[name] = getattr(params, name)
        if params.stop:
            extra["stop"] = list(params.stop)
        return self._client.chat.completions.create(
            model=self._model,
            messages=messages,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            timeout=timeout_s,
            **extra,
        )

    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        if request.json_schema is None:
            response = self._create(request, timeout_s, None)
        else:
            response = self._complete_structured(request, timeout_s)
        if not response.choices:
            raise LLMError("endpoint returned no choices")
        usage = response.usage
        return RawCompletion(
            response.choices[0].message.content or "",
            getattr(usage, "prompt_tokens", 0) or 0,
            getattr(usage, "completion_tokens", 0) or 0,
        )

    def _complete_structured(self, request: ChatRequest, timeout_s: float) -> Any:
        if self._mode is not None:
            return self._create(request, timeout_s, self._mode)
        for mode in _MODES_IN_ORDER:
            try:
                response = self._create(request, timeout_s, mode)
            except Exception as exc:  # noqa: BLE001 - only a refusal moves on to the next mode
                if mode != "prompt" and _rejected(exc):
                    continue
                raise
            with self._mode_lock:
                self._mode = mode
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def structured_mode(self) -> str | None:
        """The structured-output mode in use (None until the first schema call in auto mode)."""
        return self._mode

    # ----------------------------------------------------------------- score
    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        chat = ChatRequest(request.messages, request.params.model_copy(update={"max_tokens": 1}))
        try:
            response = self._create(chat, timeout_s, None, logprobs=True, top_logprobs=self.top_logprobs)
        except Exception as exc:  # noqa: BLE001
            if _rejected(exc):
                raise ScoringUnsupported(f"server refused logprobs: {exc}") from None
            raise
        choice = response.choices[0] if response.choices else None
        content = getattr(getattr(choice, "logprobs", None), "content", None)
        if not content or not content[0].top_logprobs:
            raise ScoringUnsupported("server returned no top_logprobs")
        top = [(c.token, c.logprob) for c in content[0].top_logprobs]
        try:
            logprobs = options_from_top_tokens(top, request.options)
        except ValueError as exc:
            raise ScoringUnsupported(str(exc), permanent=False) from None
        usage = response.usage
        return RawScore(logprobs, "logprobs", getattr(usage, "prompt_tokens", 0) or 0,
                        getattr(usage, "completion_tokens", 0) or 0)

    def close(self) -> None:
        self._client.close()
