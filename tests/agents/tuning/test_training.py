"""Packing, training and scoring on a tiny random Llama: each packed question reads as if sent alone, an adapter moves
the answers, and the adapter folder loads back into the same torch model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from recarena.agents.tuning.base import Recipe, TuningError, add_lora, load_base, load_tuned, p_yes, score_examples
from recarena.agents.tuning.examples import ExampleConfig, build_examples
from recarena.agents.tuning.manifest import write_adapter
from recarena.agents.tuning.packing import collate, option_logits, pack, prompt_tokens
from recarena.agents.tuning.trainer import Order, train


@pytest.fixture(scope="module")
def examples(train_part):
    return build_examples(train_part, ExampleConfig(users=6, targets=2, negatives=2))


def test_a_packed_question_reads_exactly_as_the_prompt_sent_alone(tiny_base, examples):
    base = load_base(tiny_base)
    sequences = pack(base.tokenizer, examples[:14], max_tokens=700)
    assert len(sequences) < 14 and max(len(s.reads) for s in sequences) > 1  # several questions share a sequence
    batch = collate(sequences, base.tokenizer.pad_token_id, torch.float32, "cpu")
    with torch.no_grad():
        packed = option_logits(base.model, batch).log_softmax(-1)
        for label, index in enumerate(i for s in sequences for i in s.examples):
            alone = base.model(torch.tensor([prompt_tokens(base.tokenizer, examples[index].messages)])).logits[0, -1]
            options = batch.option_ids[label][batch.option_valid[label]]
            torch.testing.assert_close(packed[label, : len(options)], alone[options].log_softmax(-1), atol=2e-5, rtol=1e-4)


def test_each_load_of_the_base_is_a_fresh_copy_even_when_it_is_not_read_again(tiny_base):
    """The second load copies the first (reading a GGUF takes most of a minute), so LoRA on one copy, which wraps its
    modules in place, leaves the next load untouched."""
    first = load_base(tiny_base)
    add_lora(first.model, Recipe(rank=2, layers=1))
    second = load_base(tiny_base)
    assert second.model is not first.model and second.tokenizer is first.tokenizer
    assert not any("lora" in name for name, _ in second.model.named_modules())
    third = load_base(tiny_base)
    for (name, a), (_, b) in zip(second.model.named_parameters(), third.model.named_parameters()):
        assert a.data_ptr() != b.data_ptr() and torch.equal(a, b), name


def test_the_order_of_steps_is_a_function_of_the_seed_and_step_alone():
    order = Order(10, 4, seed=5)
    steps = [order.step(s) for s in range(5)]
    assert sorted(i for s in steps[:5] for i in s) == sorted(list(range(10)) * 2)  # two epochs, each a permutation
    assert Order(10, 4, seed=5).step(3) == steps[3]  # no state: a resumed run trains on the same sequences
    assert Order(10, 4, seed=6).step(0) != steps[0]


def test_an_adapter_changes_the_answers_and_loads_back(tiny_base, examples, tmp_path):
    """A few steps at a high learning rate on "Yes" for every item move P(Yes) up; the saved adapter gives the same
    probabilities when loaded back on the base."""
    watch = [dataclasses.replace(e, answer="Yes") for e in examples if e.question == "watch"]
    base = load_base(tiny_base)
    before = p_yes(base.model, base.tokenizer, watch)
    torch.manual_seed(0)
    model = add_lora(base.model, Recipe(layers=1, rank=4))
    assert np.allclose(p_yes(model, base.tokenizer, watch), before, atol=1e-6)  # LoRA starts at zero (B = 0)
    recipe = Recipe(layers=1, rank=4, steps=8, batch=4, lr=0.1, warmup=1, checkpoint_every=100)
    settings = {"test": 1}
    done = train(model, pack(base.tokenizer, watch, 400), recipe, 0, tmp_path / "checkpoints", settings, base.tokenizer.pad_token_id, False)
    after = p_yes(model, base.tokenizer, watch)
    assert (after > before + 0.1).all(), (before.mean(), after.mean())
    assert len(done.curve) == 8 and done.curve[-1]["loss"] < done.curve[0]["loss"]
    manifest = {"base": base.identity, "recipe": {"steps": 8}, "run": {"seconds": done.seconds}}
    folder = write_adapter(model, manifest, tmp_path / "out")
    assert json.loads((folder / "manifest.json").read_text())["base"]["digest"] == base.identity["digest"]
    tuned = load_tuned(folder)
    np.testing.assert_allclose(p_yes(tuned.model, tuned.tokenizer, watch), after, atol=1e-6)
    ratings = [e for e in examples if e.question == "rate"]
    stars = score_examples(tuned.model, tuned.tokenizer, ratings)
    assert all(len(p) == 5 and abs(p.sum() - 1) < 1e-5 for p in stars)


def test_a_tuned_model_on_another_base_is_refused(tiny_base, tmp_path):
    base = load_base(tiny_base)
    model = add_lora(base.model, Recipe(layers=1, rank=2))
    folder = write_adapter(model, {"base": {**base.identity, "digest": "0" * 16}}, tmp_path)
    with pytest.raises(TuningError, match="^base: .*trained on"):
        load_tuned(folder)


def test_lora_on_a_module_the_base_lacks_names_the_field(tiny_base):
    with pytest.raises(TuningError, match="^modules: .*no_such_proj"):
        add_lora(load_base(tiny_base).model, Recipe(modules=("q_proj", "no_such_proj")))
