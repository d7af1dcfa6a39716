"""The LLM layer: one interface (:class:`ChatModel`, implemented by :class:`LLM`) over three kinds
of backend (embedded llama.cpp SmolLM2, any OpenAI-compatible endpoint, any LangChain chat model),
with a SQLite cache, retries, timeouts, validation with repair and fallbacks, and accounting.

    llm = make_llm("embedded", LLMConfig(cache_path="runs/llm-cache.sqlite"))
    llm.score([{"role": "user", "content": "Would you watch Heat? Yes or No."}], ["Yes", "No"])
"""

from .accounting import Accountant, ComponentUsage, FallbackEvent, Price
from .cache import CacheCorruptWarning, SQLiteCache
from .checker import ConformanceError, check_llm
from .client import LLM
from .health import DEFAULT_MAX_FAILURE_RATE, HealthRule, LLMHealthError, probe_backend
from .factory import BACKENDS, LLMConfig, backend_from_string, build_llm, make_llm
from .protocol import (
    Backend, ChatModel, ChatReply, ChatRequest, LLMError, LLMSpecError, RawCompletion, RawScore, SamplingParams, ScoreReply,
    ScoreRequest, ScoringUnsupported, TransientBackendError,
)
from .retry import CallTimeout, RetryPolicy, is_transient
from .schema import AnswerInvalid, Schema

__all__ = [
    "Accountant", "AnswerInvalid", "DEFAULT_MAX_FAILURE_RATE", "HealthRule", "LLMHealthError", "probe_backend", "BACKENDS", "Backend", "CacheCorruptWarning", "CallTimeout", "ChatModel",
    "ChatReply", "ChatRequest", "ComponentUsage", "ConformanceError", "FallbackEvent", "LLM", "LLMConfig",
    "LLMError", "LLMSpecError", "Price", "RawCompletion", "RawScore", "RetryPolicy", "SQLiteCache", "SamplingParams", "Schema",
    "ScoreReply", "ScoreRequest", "ScoringUnsupported", "TransientBackendError", "backend_from_string",
    "build_llm", "check_llm", "is_transient", "make_llm",
]
