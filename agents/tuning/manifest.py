"""The adapter's folder: named by its content, with a manifest of how it was made.

``OUT/adapter-<12 hex>/`` holds peft's ``adapter_config.json`` and ``adapter_model.safetensors``, for a GGUF
base (the embedded SmolLM2) the same LoRA as a llama.cpp adapter file ``adapter.gguf`` (`gguf_lora.py`; what
``--llm embedded:adapter=FOLDER`` serves), and ``manifest.json``: the base model (name, digest of its weights' file(s): for the embedded GGUF the
digest `recarena.agents.llm.embedded` gives it), the training data (the training part's
`Dataset.fingerprint`), the prompts' versions (`examples.prompt_versions`: templates, item text, a digest of the
profile text), the example settings and counts, the recipe,
the seed, the training curve, the libraries' versions and the command.

The name is a sha256 over the adapter's tensors (names, dtypes, shapes, bytes) and the manifest
without what differs between two runs of the same settings by design (`UNHASHED`: wall-clock
times, the command, the base's path on this machine, whether the run resumed). The same settings on
the same machine give the same folder; the folder is written beside it and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

ADAPTER_PREFIX = "adapter-"
UNHASHED = frozenset({"run", "path", "seconds", "validation"})
"""Manifest keys (at any depth) left out of the content hash (measurements, not what makes the adapter)."""


def library_versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "transformers", "peft", "gguf"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def command_line() -> str:
    """The command that is running, as a person would retype it."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(shlex.quote(part) for part in [program, *sys.argv[1:]])


def hashed_view(value: Any) -> Any:
    """`value` without the `UNHASHED` keys, at any depth."""
    if isinstance(value, dict):
        return {k: hashed_view(v) for k, v in value.items() if k not in UNHASHED}
    if isinstance(value, list):
        return [hashed_view(v) for v in value]
    return value


def content_hash(weights: dict[str, torch.Tensor], manifest: dict[str, Any]) -> str:
    """sha256 of the adapter's tensors and of the manifest's `hashed_view`."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().cpu().contiguous()
        digest.update(f"{name}\x1f{tensor.dtype}\x1f{tuple(tensor.shape)}\x1e".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    digest.update(json.dumps(hashed_view(manifest), sort_keys=True).encode())
    return digest.hexdigest()


def adapter_weights(model: Any) -> dict[str, torch.Tensor]:
    """The adapter's tensors as peft saves them."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, save_embedding_layers=False)


def write_adapter(model: Any, manifest: dict[str, Any], out: Path) -> Path:
    """Save `model`'s adapter and `manifest` into ``out/adapter-<hash>/`` (whole or not at all); return the folder."""
    weights = adapter_weights(model)
    digest = content_hash(weights, manifest)
    final = Path(out) / f"{ADAPTER_PREFIX}{digest[:12]}"
    partial = Path(out) / f".{final.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial), save_embedding_layers=False)
    if manifest.get("base", {}).get("kind") == "gguf":  # the embedded model: llama.cpp serves base + this file
        from .gguf_lora import write_gguf_lora

        config = model.get_base_model().config
        write_gguf_lora(weights, manifest["recipe"]["alpha"], config.num_attention_heads, config.num_key_value_heads,
                        partial / "adapter.gguf")  # fmt: skip
    (partial / "manifest.json").write_text(json.dumps({**manifest, "content_sha256": digest}, indent=2))
    for file in partial.iterdir():
        if file.is_file():
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)  # the same content, written again
    os.replace(partial, final)
    return final
