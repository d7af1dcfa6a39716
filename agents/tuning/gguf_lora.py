"""A peft LoRA of a llama-architecture model as a llama.cpp adapter file (``adapter.gguf``).

The embedded backend serves a tuned model from this file: folded into a copy of the base GGUF's
weights once (`recarena.agents.llm.merged`, the default: a page costs no more than the base's), or
applied by llama.cpp at run time (``serving="lora"``).

What the file holds, as llama.cpp's own converter (``convert_lora_to_gguf.py``) writes it:

* metadata ``general.architecture`` (the base's), ``general.type = "adapter"``, ``adapter.type = "lora"``
  and ``adapter.lora.alpha`` (llama.cpp scales by alpha / rank, as peft does);
* for every adapted weight, ``blk.N.<tensor>.weight.lora_a`` (peft's A, rank x inputs) and ``.lora_b``
  (peft's B, outputs x rank), in float32;
* the query and key projections' B with its rows in the GGUF's rotary order: the llama converter
  permutes those weights' rows (transformers undoes it when it loads a GGUF), so B must move with them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .base import TuningError

#: transformers' llama module names -> the GGUF's tensor names (per block).
GGUF_TENSORS = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}  # fmt: skip
_PEFT_NAME = re.compile(r"(?:^|\.)layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


def rotary_rows(weights: torch.Tensor, heads: int) -> torch.Tensor:
    """`weights` (outputs x anything) with its rows in the order llama's GGUF converter gives q/k projections."""
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def gguf_lora_tensors(weights: dict[str, torch.Tensor], heads: int, kv_heads: int) -> dict[str, np.ndarray]:
    """peft's adapter tensors (`get_peft_model_state_dict` names) under their GGUF names, B of q/k permuted."""
    out: dict[str, np.ndarray] = {}
    for name, tensor in weights.items():
        match = _PEFT_NAME.search(name)
        if match is None or match.group(2) not in GGUF_TENSORS:
            raise TuningError(f"adapter: tensor {name!r} is not a LoRA of a llama attention or MLP projection")
        block, module, part = int(match.group(1)), match.group(2), match.group(3)
        value = tensor.detach().to("cpu", torch.float32)
        if part == "B" and module == "self_attn.q_proj":
            value = rotary_rows(value, heads)
        elif part == "B" and module == "self_attn.k_proj":
            value = rotary_rows(value, kv_heads)
        out[f"blk.{block}.{GGUF_TENSORS[module]}.weight.lora_{part.lower()}"] = np.ascontiguousarray(value.numpy())
    return out


def write_gguf_lora(weights: dict[str, torch.Tensor], alpha: float, heads: int, kv_heads: int, path: Path,
                    architecture: str = "llama") -> Path:  # fmt: skip
    """Write the llama.cpp adapter file for peft `weights` (see the module docstring); returns `path`."""
    import gguf

    tensors = gguf_lora_tensors(weights, heads, kv_heads)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)
