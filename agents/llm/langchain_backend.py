"""Any LangChain ``BaseChatModel`` the user passes in.

Schemas go through ``with_structured_output`` (the model's default method; then llama.cpp's
``json_object`` + ``schema`` extension bound as ``response_format``; then ``json_mode``; then the
schema in the prompt alone; the last three also put the schema in the prompt; the first method the
model accepts is remembered); the layer validates and repairs the text either way. ``score`` binds
``logprobs``/``top_logprobs`` (honoured by ChatOpenAI and other OpenAI-style models) and reads them
from the response metadata; models without them fall back to constrained generation.

The model's own sampling settings (temperature, max tokens, seed, repetition penalties) are used as
configured on it and enter the cache key through its identifying parameters; of a request's settings
only the stop strings of free text are passed (``invoke(stop=...)``, which every chat model takes). Switch its own retries off
(``max_retries=0`` on ChatOpenAI) so the layer's retry policy is the only one.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .protocol import Backend, ChatRequest, LLMError, RawCompletion, RawScore, ScoreRequest, ScoringUnsupported
from .retry import is_refusal, is_transient
from .schema import with_schema_instruction
from .scoring import options_from_top_tokens

_METHODS_IN_ORDER = ("default", "json_object_schema", "json_mode", "prompt")
_FEATURE_WORDS = ("response_format", "json_schema", "tool", "function", "not supported", "unsupported")
_SECRET_HINTS = ("key", "token", "secret", "password", "auth")


def _usage(message: Any) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks
        return "".join(block.get("text", "") if isinstance(block, dict) else str(block) for block in content)
    return str(content)


class LangChainBackend(Backend):
    """Adapter from a LangChain chat model to the backend contract."""

    name = "langchain"

    def __init__(self, model: Any, *, max_concurrency: int = 4, top_logprobs: int = 20) -> None:
        try:
            from langchain_core.language_models import BaseChatModel
        except ImportError as exc:  # pragma: no cover - only without the extra
            raise LLMError("the LangChain backend needs 'langchain-core': pip install 'recarena[llm]'") from exc
        if not isinstance(model, BaseChatModel):
            raise TypeError(f"expected a LangChain BaseChatModel, got {type(model).__name__}")
        self._model = model
        self.max_concurrency = max_concurrency
        self.top_logprobs = top_logprobs
        self._method: str | None = None
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        params = dict(getattr(self._model, "_identifying_params", {}) or {})
        safe = {k: str(v) for k, v in sorted(params.items()) if not any(h in k.lower() for h in _SECRET_HINTS)}
        name = str(params.get("model_name") or params.get("model") or type(self._model).__name__)
        base_url = str(getattr(self._model, "openai_api_base", "") or "")
        return {"backend": self.name, "model": name, "class": type(self._model).__name__,
                "base_url": base_url, "params": json.dumps(safe, sort_keys=True)}

    def secrets(self) -> list[str]:
        found = []
        for attr in ("openai_api_key", "api_key", "anthropic_api_key"):
            value = getattr(self._model, attr, None)
            if value is not None:
                secret = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
                if secret:
                    found.append(secret)
        return found

    @staticmethod
    def _messages(messages: Any) -> list[tuple[str, str]]:
        roles = {"system": "system", "user": "human", "assistant": "ai"}
        return [(roles[m["role"]], m["content"]) for m in messages]

    # ----------------------------------------------------------------- chat
    def probe(self, timeout_s: float) -> None:
        """A one-word question: a LangChain model has no cheaper call that reaches its endpoint."""
        self._model.invoke(self._messages(({"role": "user", "content": "Say OK."},)))

    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        if request.json_schema is None:
            stop = {"stop": list(request.params.stop)} if request.params.stop else {}
            message = self._model.invoke(self._messages(request.messages), **stop)
            return RawCompletion(_text(message), *_usage(message))
        if self._method is not None:
            return self._structured(request, self._method)
        for method in _METHODS_IN_ORDER:
            try:
                result = self._structured(request, method)
            except Exception as exc:  # noqa: BLE001 - anything but a transient fault means "not supported"
                if method == "prompt" or (is_transient(exc) and not is_refusal(exc, _FEATURE_WORDS)):
                    raise
                continue
            with self._lock:
                self._method = method
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _structured(self, request: ChatRequest, method: str) -> RawCompletion:
        if method == "prompt":
            message = self._model.invoke(self._messages(with_schema_instruction(request.messages, request.json_schema)))
            return RawCompletion(_text(message), *_usage(message))
        if method == "json_object_schema":
            bound = self._model.bind(response_format={"type": "json_object", "schema": request.json_schema})
            message = bound.invoke(self._messages(with_schema_instruction(request.messages, request.json_schema)))
            return RawCompletion(_text(message), *_usage(message))
        messages = request.messages
        kwargs: dict[str, Any] = {"include_raw": True}
        if method == "json_mode":
            kwargs["method"] = "json_mode"
            messages = tuple(with_schema_instruction(messages, request.json_schema))
        schema = {"title": request.schema_name, "description": "The answer.", **request.json_schema}
        out = self._model.with_structured_output(schema, **kwargs).invoke(self._messages(messages))
        raw = out.get("raw")
        if out.get("parsing_error") is None and out.get("parsed") is not None:
            text = json.dumps(out["parsed"])
        else:
            tool_calls = getattr(raw, "tool_calls", None)
            text = json.dumps(tool_calls[0]["args"]) if tool_calls else _text(raw)
        return RawCompletion(text, *_usage(raw))

    @property
    def structured_method(self) -> str | None:
        """The structured-output method in use (None until the first schema call)."""
        return self._method

    # ----------------------------------------------------------------- score
    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        try:
            bound = self._model.bind(logprobs=True, top_logprobs=self.top_logprobs, max_tokens=1)
            message = bound.invoke(self._messages(request.messages))
        except Exception as exc:  # noqa: BLE001
            if is_transient(exc) and not is_refusal(exc, ("logprobs", "not supported", "unsupported")):
                raise
            raise ScoringUnsupported(f"{type(self._model).__name__} refused logprobs: {exc}") from None
        content = ((getattr(message, "response_metadata", None) or {}).get("logprobs") or {}).get("content")
        if not content or not content[0].get("top_logprobs"):
            raise ScoringUnsupported(f"{type(self._model).__name__} returned no top_logprobs")
        top = [(c["token"], c["logprob"]) for c in content[0]["top_logprobs"]]
        try:
            logprobs = options_from_top_tokens(top, request.options)
        except ValueError as exc:
            raise ScoringUnsupported(str(exc), permanent=False) from None
        return RawScore(logprobs, "logprobs", *_usage(message))
