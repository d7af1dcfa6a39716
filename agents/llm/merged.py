"""The GGUF llama.cpp serves: the base's weights in Q8_0, with a tuned LoRA adapter folded in when there is one.

llama.cpp can apply a LoRA file at run time, but then every adapted projection costs a second, small
matrix product per token; on 2 cores a page of the shipped adapter took 1.09x the base's time
(BENCHMARKS.md). Folding the adapter into the weights once, ``W' = W + alpha / rank * B @ A``, gives a
model with the base's shape and cost. It is read and written in GGUF terms only:

* the base GGUF's metadata and every other tensor are copied byte for byte;
* each adapted tensor (``blk.N.attn_q.weight`` ... ``blk.N.ffn_down.weight``) is dequantised, the
  product of its ``.lora_b`` and ``.lora_a`` from the adapter file added (that file already holds B in
  the GGUF's rotary row order, `recarena.agents.tuning.gguf_lora`), and quantised again as
  `MERGED_TYPE`;
* the result is cached under ``recarena_home()/merged/``, named by the base's digest, the sha256 of
  the adapter file itself (not the manifest's word for it) and the type, written to a temporary name and renamed into place (a kill leaves no
  half file; two processes building it at once both end with the same file).

`MERGED_TYPE` is Q8_0, not the base's Q4_1: a LoRA's change to a weight is small against Q4_1's
step (a sixteenth of a block's range), so requantising to Q4_1 would round much of it away; Q8_0's
step is sixteen times finer. BENCHMARKS.md has the page cost and the taste of both servings.

With ``requantise`` (the embedded backend's default) every tensor in one of the coarse block types
`REQUANTISED_TYPES` goes to Q8_0 too, adapter or not: llama.cpp runs Q8_0 faster than Q4_1 on this
project's x86 CPUs (a page in 0.58x the time on 2 cores, BENCHMARKS.md), and the weights move by
less than half a Q8_0 step (the Q4_1 values are what is requantised, so nothing is gained or lost in
what the model knows). Finer types (Q8_0, F16, F32) and K-quants are left as they are.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from recarena.simulator.data.sources import recarena_home

from .protocol import LLMSpecError

MERGED_TYPE = "Q8_0"
REQUANTISED_TYPES = frozenset({"Q4_0", "Q4_1", "Q5_0", "Q5_1"})
"""Block types coarser than `MERGED_TYPE` that ``requantise`` turns into it."""
_SKIPPED_KEYS = ("GGUF.", "general.architecture")  # the writer adds these itself


def merged_path(base_digest: str, adapter_file: Path | None, home: Path | None = None, *, requantise: bool = True) -> Path:
    """Where the merged model of this base and adapter file (None: the base alone) is cached."""
    adapter = hashlib.sha256(Path(adapter_file).read_bytes()).hexdigest()[:16] if adapter_file is not None else "base"
    kind = f"{MERGED_TYPE.lower()}-all" if requantise else MERGED_TYPE.lower()
    return (home or recarena_home()) / "merged" / f"merged-{base_digest}-{adapter}-{kind}.gguf"


def requantisable(base: Path) -> bool:
    """Whether `base` holds a tensor in one of `REQUANTISED_TYPES` (reads the header and tensor table only)."""
    import gguf

    return any(t.tensor_type.name in REQUANTISED_TYPES for t in gguf.GGUFReader(str(base)).tensors)


def lora_deltas(adapter_file: Path) -> dict[str, np.ndarray]:
    """Each adapted tensor's name in the base GGUF -> ``alpha / rank * B @ A`` (outputs x inputs, float32)."""
    import gguf

    reader = gguf.GGUFReader(str(adapter_file))
    field = reader.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    if field is None:
        raise LLMSpecError(f"adapter: {adapter_file} has no {gguf.Keys.Adapter.LORA_ALPHA} (not a llama.cpp LoRA file)")
    alpha = float(field.contents())
    parts = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
    deltas = {}
    for name, a in parts.items():
        if name.endswith(".lora_a"):
            target = name.removesuffix(".lora_a")
            b = parts.get(target + ".lora_b")
            if b is None:
                raise LLMSpecError(f"adapter: {adapter_file} has {name} but no {target}.lora_b")
            deltas[target] = (alpha / a.shape[0]) * (b @ a)
    return deltas


def merge_adapter(base: Path, adapter_file: Path | None, out: Path, *, requantise: bool = False) -> Path:
    """Write `base` with the adapter in `adapter_file` (None: none) folded in to `out`, and with ``requantise`` every
    tensor of a `REQUANTISED_TYPES` type in `MERGED_TYPE` (see the module docstring); returns `out`."""
    import gguf
    from gguf import quants

    merged_type = gguf.GGMLQuantizationType[MERGED_TYPE]
    deltas = lora_deltas(adapter_file) if adapter_file is not None else {}
    reader = gguf.GGUFReader(str(base))
    unknown = sorted(set(deltas) - {t.name for t in reader.tensors})
    if unknown:
        raise LLMSpecError(f"adapter: {adapter_file} adapts tensors the base model has not: {', '.join(unknown[:3])}")
    architecture = reader.fields["general.architecture"].contents()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(partial), architecture)
    for field in reader.fields.values():
        if field.name.startswith(_SKIPPED_KEYS):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type)
    for tensor in reader.tensors:
        if tensor.name in deltas or (requantise and tensor.tensor_type.name in REQUANTISED_TYPES):
            weights = quants.dequantize(tensor.data, tensor.tensor_type) + deltas.get(tensor.name, 0.0)
            data = quants.quantize(weights.astype(np.float32), merged_type)
            writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=merged_type)
        else:
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out)
    return out


def merged_model(base: Path, base_digest: str, adapter_file: Path | None, home: Path | None = None, *,
                 requantise: bool = True) -> Path:  # fmt: skip
    """The cached merged model of `base` (whose digest is `base_digest`) and `adapter_file` (None: the base alone,
    requantised), built on first use; `base` itself when there is no adapter and nothing to requantise."""
    out = merged_path(base_digest, adapter_file, home, requantise=requantise)
    if out.is_file():
        return out  # checked first: reading a GGUF's header takes seconds (SmolLM2's tokenizer tables)
    if adapter_file is None and not (requantise and requantisable(base)):
        return base
    return merge_adapter(base, adapter_file, out, requantise=requantise)
