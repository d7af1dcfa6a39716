"""A tuned model served as one GGUF with its adapter folded into the weights (`recarena.agents.llm.merged`), beside
the LoRA applied at run time: the same model, at the base's cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recarena.agents.llm import LLMError


def test_a_delta_is_alpha_over_rank_times_b_times_a_under_the_base_tensors_name(tmp_path):
    from recarena.agents.llm.merged import lora_deltas
    from recarena.agents.tuning.gguf_lora import write_gguf_lora

    a, b = torch.randn(2, 6), torch.randn(4, 2)
    write_gguf_lora({"base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight": a,
                     "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight": b},
                    alpha=8.0, heads=2, kv_heads=1, path=tmp_path / "adapter.gguf")  # fmt: skip
    deltas = lora_deltas(tmp_path / "adapter.gguf")
    assert list(deltas) == ["blk.1.attn_v.weight"]
    np.testing.assert_allclose(deltas["blk.1.attn_v.weight"], 8.0 / 2 * (b @ a).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.requires("llama_cpp")
def test_the_merged_file_is_the_base_with_the_delta_added_to_the_adapted_tensors_only(smollm2_adapter, tmp_path):
    import gguf
    from gguf import quants

    from recarena.agents.llm.embedded import smollm2_gguf_path
    from recarena.agents.llm.merged import MERGED_TYPE, lora_deltas, merge_adapter

    folder, _ = smollm2_adapter
    merged = merge_adapter(smollm2_gguf_path(), folder / "adapter.gguf", tmp_path / "merged.gguf")
    base, out = gguf.GGUFReader(str(smollm2_gguf_path())), gguf.GGUFReader(str(merged))
    assert [f.name for f in out.fields.values()] == [f.name for f in base.fields.values()]
    assert out.fields["tokenizer.chat_template"].contents() == base.fields["tokenizer.chat_template"].contents()
    deltas = lora_deltas(folder / "adapter.gguf")
    assert len(deltas) == 2
    for before, after in zip(base.tensors, out.tensors):
        assert before.name == after.name
        if before.name not in deltas:
            assert after.tensor_type == before.tensor_type and np.array_equal(after.data, before.data)
            continue
        assert after.tensor_type.name == MERGED_TYPE
        expected = quants.dequantize(before.data, before.tensor_type) + deltas[before.name]
        got = quants.dequantize(after.data, after.tensor_type)
        step = np.abs(expected).max(axis=1, keepdims=True) / 127  # Q8_0: a block's largest magnitude over 127
        assert np.all(np.abs(got - expected) <= step)
        assert np.abs(got - quants.dequantize(before.data, before.tensor_type)).mean() > 0.5 * np.abs(deltas[before.name]).mean()


@pytest.mark.requires("llama_cpp")
def test_merged_and_run_time_lora_serve_the_same_model(smollm2_adapter):
    """Both servings move the answer from the base's by about the same amount; the merged one is cached, keyed by
    the adapter, and the serving is part of the cache identity."""
    from recarena.agents.llm.embedded import EmbeddedBackend
    from recarena.agents.llm.protocol import SamplingParams, ScoreRequest

    folder, _ = smollm2_adapter
    question = ({"role": "system", "content": "You are a movie fan who loves science fiction and hates horror."},
                {"role": "user", "content": "Would you like to watch the science fiction film Star Wars? Answer Yes or No."})  # fmt: skip
    request = ScoreRequest(question, ("Yes", "No"), SamplingParams())
    answers, identities = {}, {}
    for serving in ("base", "lora", "merged"):
        backend = EmbeddedBackend(n_threads=1, **({} if serving == "base" else {"adapter": folder, "serving": serving}))
        try:
            answers[serving] = backend.score_options(request, 60).logprobs["Yes"]
            identities[serving] = backend.identity()
        finally:
            backend.close()
    lora_effect, merged_effect = answers["lora"] - answers["base"], answers["merged"] - answers["base"]
    assert abs(lora_effect) > 0.05
    assert abs(merged_effect - lora_effect) < 0.2 * abs(lora_effect)
    assert identities["lora"]["serving"] == "lora" and identities["merged"]["serving"] == "merged-q8_0"
    assert "serving" not in identities["base"]
    with pytest.raises(LLMError, match="serving: 'fused' is not one of merged, lora"):
        EmbeddedBackend(adapter=folder, serving="fused")


def test_the_merged_model_is_built_once_per_adapter_file(tmp_path, monkeypatch):
    """The cache is named by the adapter file's own bytes: the same file is merged once, a changed one again."""
    from recarena.agents.llm import merged

    built = []

    def fake_merge(base, adapter_file, out, *, requantise):
        built.append(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"merged")
        return out

    monkeypatch.setattr(merged, "merge_adapter", fake_merge)
    monkeypatch.setattr(merged, "requantisable", lambda base: True)  # the fake base holds Q4_1 blocks
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"lora one")
    first = merged.merged_model(tmp_path / "base.gguf", "basedigest", adapter, home=tmp_path / "home")
    assert merged.merged_model(tmp_path / "base.gguf", "basedigest", adapter, home=tmp_path / "home") == first
    assert len(built) == 1 and first.parent == tmp_path / "home" / "merged"
    adapter.write_bytes(b"lora two")
    assert merged.merged_model(tmp_path / "base.gguf", "basedigest", adapter, home=tmp_path / "home") != first
    assert len(built) == 2
    # The base alone, and the adapted tensors only in Q8_0 (weights="file"), are files of their own.
    alone = merged.merged_model(tmp_path / "base.gguf", "basedigest", None, home=tmp_path / "home")
    only_adapted = merged.merged_model(tmp_path / "base.gguf", "basedigest", adapter, home=tmp_path / "home", requantise=False)
    assert len({first, alone, only_adapted, built[1]}) == 4 and len(built) == 4
    # A base with nothing to requantise and no adapter is served as it is: no copy.
    monkeypatch.setattr(merged, "requantisable", lambda base: False)
    assert merged.merged_model(tmp_path / "f16.gguf", "otherdigest", None, home=tmp_path / "home") == tmp_path / "f16.gguf"
    assert len(built) == 4


@pytest.mark.requires("llama_cpp")
def test_requantising_turns_every_q4_1_block_into_q8_0_within_half_a_step_and_keeps_the_rest(tmp_path):
    import gguf
    from gguf import quants

    from recarena.agents.llm.embedded import smollm2_gguf_path
    from recarena.agents.llm.merged import REQUANTISED_TYPES, merge_adapter, requantisable

    out = merge_adapter(smollm2_gguf_path(), None, tmp_path / "q8.gguf", requantise=True)
    base, served = gguf.GGUFReader(str(smollm2_gguf_path())), gguf.GGUFReader(str(out))
    assert requantisable(smollm2_gguf_path()) and not requantisable(out)
    changed = 0
    for before, after in zip(base.tensors, served.tensors, strict=True):
        assert before.name == after.name
        if before.tensor_type.name not in REQUANTISED_TYPES:
            assert after.tensor_type == before.tensor_type and np.array_equal(after.data, before.data)
            continue
        changed += 1
        assert after.tensor_type.name == "Q8_0"
        if changed % 30 == 1:  # a sample across the blocks: dequantising all 210 would double the test's time
            values = quants.dequantize(before.data, before.tensor_type)
            step = np.abs(values).reshape(values.shape[0], -1, 32).max(axis=2) / 127  # each 32-value block's step
            error = np.abs(quants.dequantize(after.data, after.tensor_type) - values).reshape(step.shape + (32,))
            assert np.all(error <= 0.6 * step[..., None])  # half a step, plus the rounding of the block's f16 scale
    assert changed == 210  # SmolLM2's 30 blocks x 7 projections


@pytest.mark.requires("llama_cpp")
def test_the_base_is_served_requantised_by_default_and_answers_as_the_file_does(tmp_path):
    from recarena.agents.llm.embedded import EmbeddedBackend
    from recarena.agents.llm.protocol import SamplingParams, ScoreRequest

    question = ({"role": "system", "content": "You are a movie fan who loves science fiction."},
                {"role": "user", "content": "Would you like to watch Star Wars? Answer Yes or No."})  # fmt: skip
    request = ScoreRequest(question, ("Yes", "No"), SamplingParams())
    answers, identities = {}, {}
    for weights in ("q8_0", "file"):
        backend = EmbeddedBackend(n_threads=1, weights=weights)
        try:
            answers[weights] = backend.score_options(request, 60).logprobs
            identities[weights] = backend.identity()
        finally:
            backend.close()
    assert identities["q8_0"]["weights"] == "q8_0" and "weights" not in identities["file"]
    assert {k: v for k, v in identities["q8_0"].items() if k != "weights"} == identities["file"]
    assert answers["q8_0"] != answers["file"]  # other weights: other numbers, and other cache entries
    # Within llama.cpp's rounding noise (0.17 at most over three questions, 2026-12-01); a broken file is nats away.
    assert all(abs(answers["q8_0"][o] - answers["file"][o]) < 0.3 for o in ("Yes", "No"))
    with pytest.raises(LLMError, match="weights: 'q2' is not one of q8_0, file"):
        EmbeddedBackend(weights="q2")
