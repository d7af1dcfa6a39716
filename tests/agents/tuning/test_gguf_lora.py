"""A tuned adapter as llama.cpp runs it: peft's LoRA written as ``adapter.gguf`` (`recarena.agents.tuning.gguf_lora`)
and served by the embedded backend (``embedded:adapter=FOLDER``), which refuses an adapter made for another base.

That the file's LoRA moves llama.cpp's answers as it moves the torch model's is measured on the real SmolLM2 by
``benchmarks/tuned_llm.py --check-serving`` (loading SmolLM2 in torch costs too much for the suite)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recarena.agents.llm import LLMError
from recarena.agents.tuning.base import TuningError
from recarena.agents.tuning.gguf_lora import gguf_lora_tensors, rotary_rows, write_gguf_lora


def test_query_and_key_rows_take_the_gguf_rotary_order():
    """llama's GGUF converter interleaves the two halves of each head's rows (transformers' rotary halves)."""
    rows = torch.arange(16.0)[:, None]
    assert rotary_rows(rows, heads=1)[:, 0].tolist() == [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15]
    assert rotary_rows(rows, heads=2)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_peft_names_become_gguf_names_and_only_b_of_q_and_k_moves():
    a, b = torch.randn(2, 8), torch.randn(8, 2)
    peft = {f"base_model.model.model.layers.3.self_attn.{m}.lora_{p}.weight": (a if p == "A" else b)
            for m in ("q_proj", "k_proj", "v_proj") for p in "AB"}  # fmt: skip
    out = gguf_lora_tensors(peft, heads=2, kv_heads=1)
    assert sorted(out) == sorted(f"blk.3.attn_{m}.weight.lora_{p}" for m in "qkv" for p in "ab")
    assert all(np.array_equal(out[f"blk.3.attn_{m}.weight.lora_a"], a.numpy()) for m in "qkv")
    assert np.array_equal(out["blk.3.attn_v.weight.lora_b"], b.numpy())
    assert np.array_equal(out["blk.3.attn_q.weight.lora_b"], rotary_rows(b, 2).numpy())
    assert np.array_equal(out["blk.3.attn_k.weight.lora_b"], rotary_rows(b, 1).numpy())
    with pytest.raises(TuningError, match="embed_tokens"):
        gguf_lora_tensors({"base_model.model.model.embed_tokens.lora_A.weight": a}, heads=2, kv_heads=1)


@pytest.mark.requires("llama_cpp")
def test_the_embedded_backend_serves_an_adapter_that_changes_its_answers(smollm2_adapter):
    from recarena.agents.llm import make_llm

    question = [{"role": "system", "content": "You are a movie fan who loves science fiction and hates horror."},
                {"role": "user", "content": "Would you like to watch the science fiction film Star Wars? Answer Yes or No."}]
    folder, _ = smollm2_adapter
    base, tuned = make_llm("embedded", None), make_llm(f"embedded:adapter={folder}", None)
    try:
        plain, adapted = (llm.score(question, ["Yes", "No"]) for llm in (base, tuned))
        assert plain.ok and adapted.ok
        assert abs(adapted.logprobs["Yes"] - plain.logprobs["Yes"]) > 0.01  # the LoRA moves the answer
        assert tuned.score(question, ["Yes", "No"]).logprobs == adapted.logprobs  # and stays reproducible
        # Cache keys carry the adapter: a tuned model's answers never stand in for the base model's.
        assert tuned.backend.identity()["adapter"] == "ab" * 8 and "adapter" not in base.backend.identity()
    finally:
        base.close()
        tuned.close()


@pytest.mark.requires("llama_cpp")
def test_an_adapter_for_another_base_or_without_its_file_is_refused(smollm2_adapter, tmp_path):
    from recarena.agents.llm.embedded import EmbeddedBackend

    folder, manifest = smollm2_adapter
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter.gguf").write_bytes((folder / "adapter.gguf").read_bytes())
    (other / "manifest.json").write_text(json.dumps({**manifest, "base": {"kind": "hf", "name": "Qwen", "digest": "0123"}}))
    with pytest.raises(LLMError, match="made for base model 'Qwen'"):
        EmbeddedBackend(adapter=other)
    (other / "manifest.json").write_text(json.dumps(manifest))
    (other / "adapter.gguf").unlink()
    with pytest.raises(LLMError, match="no adapter.gguf"):
        EmbeddedBackend(adapter=other)
    with pytest.raises(LLMError, match="no manifest.json"):
        EmbeddedBackend(adapter=tmp_path)


def test_an_adapter_of_a_gguf_base_is_written_with_its_llama_cpp_file(tiny_base, tmp_path):
    """`write_adapter` adds ``adapter.gguf`` when the base is a GGUF (the embedded model): a LoRA of the tiny Llama,
    its B made non-zero, read back with gguf's own reader."""
    import gguf

    from recarena.agents.tuning.base import Recipe, add_lora, load_base
    from recarena.agents.tuning.manifest import write_adapter

    loaded = load_base(tiny_base, torch.device("cpu"), torch.float32, progress=False)
    model = add_lora(loaded.model, Recipe(rank=2, alpha=4.0, layers=0, modules=("q_proj", "k_proj")))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_()
    manifest = {"base": {"kind": "gguf", "name": "tiny", "digest": "00"}, "recipe": {"alpha": 4.0}}
    folder = write_adapter(model, manifest, tmp_path)
    reader = gguf.GGUFReader(str(folder / "adapter.gguf"))
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora" and fields["adapter.lora.alpha"] == 4.0
    tensors = {t.name: t for t in reader.tensors}
    assert sorted(tensors) == sorted(f"blk.{b}.attn_{m}.weight.lora_{p}" for b in (0, 1) for m in "qk" for p in "ab")
    config = model.get_base_model().config
    b_of_k = model.get_base_model().model.layers[1].self_attn.k_proj.lora_B.default.weight.detach()
    expected = rotary_rows(b_of_k, config.num_key_value_heads).numpy()
    assert np.allclose(np.asarray(tensors["blk.1.attn_k.weight.lora_b"].data).reshape(expected.shape), expected)
