"""Fixtures for the simulated users: one kit fitted on ml-100k's training part, shared by the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ml100k_holdout(ml100k):
    from recarena.simulator.data.splits import random_holdout

    return random_holdout(ml100k, valid_fraction=0.0, test_fraction=0.2, seed=0)


@pytest.fixture(scope="session")
def ml100k_kit(ml100k_holdout):
    from recarena.agents.kit import build_user_kit

    return build_user_kit(ml100k_holdout.train_dataset(), seed=0)


@pytest.fixture(scope="session")
def smollm2_adapter(tmp_path_factory):
    """An adapter folder for the embedded SmolLM2: a random LoRA on the top block's q and v projections, sized from
    the GGUF's own metadata, with the manifest ``recarena tune-llm`` writes."""
    import json

    import llama_cpp
    import torch

    from recarena.agents.llm.embedded import _file_digest, smollm2_gguf_path
    from recarena.agents.tuning.gguf_lora import write_gguf_lora

    gguf = smollm2_gguf_path()
    meta = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False).metadata
    width, heads, kv_heads = (int(meta[f"llama.{k}"]) for k in ("embedding_length", "attention.head_count", "attention.head_count_kv"))
    top, rank, generator = int(meta["llama.block_count"]) - 1, 4, torch.Generator().manual_seed(0)
    outputs = {"q_proj": width, "v_proj": width // heads * kv_heads}
    weights = {}
    for module, rows in outputs.items():
        name = f"base_model.model.model.layers.{top}.self_attn.{module}"
        weights[f"{name}.lora_A.weight"] = torch.randn(rank, width, generator=generator) * 0.2
        weights[f"{name}.lora_B.weight"] = torch.randn(rows, rank, generator=generator) * 0.2
    folder = tmp_path_factory.mktemp("adapter")
    write_gguf_lora(weights, alpha=8.0, heads=heads, kv_heads=kv_heads, path=folder / "adapter.gguf")
    manifest = {"base": {"kind": "gguf", "name": gguf.stem, "digest": _file_digest(gguf)}, "content_sha256": "ab" * 32}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, manifest
