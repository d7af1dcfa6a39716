"""The tuned adapter shipped for ``--llm embedded:tuned`` (`recarena.agents.llm.factory.SHIPPED_ADAPTER`).

It must be what ``recarena tune-llm --dataset ml-100k --seed 0`` makes with today's defaults, on today's prompts and
today's training part: when a default or a prompt changes, these tests fail until the adapter is made again (the
command is in its README). Its weights, its manifest and its llama.cpp file must agree, and it must carry taste that
the base model lacks, on validation questions it never saw."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from recarena.agents.llm.factory import SHIPPED_ADAPTER, spec_adapter
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out, random_holdout

MANIFEST = json.loads((SHIPPED_ADAPTER / "manifest.json").read_text())


@pytest.fixture(scope="module")
def loo_train():
    return leave_one_out(load_dataset("ml-100k")).train_dataset()


def _without_out_and_progress(command: str) -> list[str]:
    words, kept = shlex.split(command), []
    for i, word in enumerate(words):
        if word in ("--progress", "--no-progress") or word == "--out" or (i and words[i - 1] == "--out"):
            continue
        kept.append(word)
    return kept


def test_embedded_tuned_names_the_shipped_folder():
    assert spec_adapter("embedded:tuned") == SHIPPED_ADAPTER
    assert {p.name for p in SHIPPED_ADAPTER.iterdir()} >= {"adapter.gguf", "manifest.json", "adapter_model.safetensors", "README.md"}


def test_the_manifest_is_todays_default_command_on_todays_prompts_and_training_part(loo_train):
    from recarena.agents.llm.embedded import _file_digest, smollm2_gguf_path
    from recarena.agents.tuning.examples import prompt_versions, same_prompts
    from recarena.scenarios.tune_llm.scenario import TuneLLMConfig, command_of

    config = TuneLLMConfig(dataset="ml-100k", seed=0)
    assert _without_out_and_progress(MANIFEST["run"]["command"]) == _without_out_and_progress(command_of(config)), \
        "tune-llm's defaults changed: make the shipped adapter again (its README has the command)"
    assert MANIFEST["recipe"] == {**asdict(config.recipe()), "modules": list(config.recipe().modules)}
    assert MANIFEST["examples"] == asdict(config.example_config())
    assert same_prompts(MANIFEST["prompts"], prompt_versions()), "the LLM user's prompts changed since the adapter was made"
    assert MANIFEST["seed"] == 0 and MANIFEST["data"]["dataset"] == "ml-100k"
    assert MANIFEST["data"]["fingerprint"] == loo_train.fingerprint()
    assert MANIFEST["base"]["digest"] == _file_digest(smollm2_gguf_path())


def test_the_weights_are_the_ones_the_manifest_hashes_and_the_llama_cpp_file_holds(tmp_path):
    from safetensors.torch import load_file

    from recarena.agents.tuning.gguf_lora import write_gguf_lora
    from recarena.agents.tuning.manifest import content_hash

    weights = load_file(SHIPPED_ADAPTER / "adapter_model.safetensors")
    settings = {key: value for key, value in MANIFEST.items() if key != "content_sha256"}  # the hash is over the rest
    assert content_hash(weights, settings) == MANIFEST["content_sha256"]
    # SmolLM2-135M: 9 attention heads, 3 key-value heads.
    written = write_gguf_lora(weights, MANIFEST["recipe"]["alpha"], heads=9, kv_heads=3, path=tmp_path / "adapter.gguf")
    assert written.read_bytes() == (SHIPPED_ADAPTER / "adapter.gguf").read_bytes()


def test_a_run_on_another_training_part_refuses_it(loo_train):
    from recarena.scenarios.contract import ScenarioError, check_llm_training_data

    check_llm_training_data(["embedded:tuned"], loo_train)  # its own training part
    other = random_holdout(load_dataset("ml-100k"), 0.1, 0.1, seed=0).train_dataset()
    with pytest.raises(ScenarioError, match="llm: the adapter .*smollm2-ml-100k-loo was trained on other data"):
        check_llm_training_data(["embedded:tuned"], other)


@pytest.mark.requires("llama_cpp")
def test_it_ranks_held_out_items_above_never_had_ones_where_the_base_model_does_not(loo_train):
    """Validation questions (never trained on) of a few users, asked as the LLM user asks them."""
    from recarena.agents.llm import make_llm
    from recarena.agents.tuning.examples import ExampleConfig
    from recarena.agents.tuning.validation import HeldOut, auc

    split = leave_one_out(load_dataset("ml-100k"))
    held = HeldOut.build(loo_train, split.valid, ExampleConfig(users=4, targets=1, negatives=3, ratings=False), seed=5)
    questions = [e for e in held.examples if e.question == "watch"]
    labels = np.array([e.answer == "Yes" for e in questions])
    aucs = {}
    for spec in ("embedded", "embedded:tuned"):
        llm = make_llm(spec, None)
        try:
            yes = [np.exp(llm.score(list(e.messages), list(e.options)).logprobs["Yes"]) for e in questions]
        finally:
            llm.close()
        aucs[spec] = auc(np.array(yes), labels)
    assert aucs["embedded:tuned"] > aucs["embedded"] + 0.15, aucs
