"""A tuned adapter is a user model too: a run refuses one trained on anything but its own training part, so that no
held-out interaction reaches the users through the LLM, and one tuned on other prompts than the users send
(`recarena.scenarios.contract.check_llm_training_data`)."""

from __future__ import annotations

import json

import pytest

from recarena.agents.tuning.examples import prompt_versions
from recarena.scenarios.cli import main
from recarena.scenarios.contract import ScenarioError, check_llm_training_data
from recarena.simulator.data.splits import leave_one_out


def adapter_folder(tmp_path, fingerprint: str, prompts: dict | None = None):
    """An adapter folder whose manifest says what it was tuned on (today's prompts unless `prompts`)."""
    prompts = prompt_versions() if prompts is None else prompts
    folder = tmp_path / f"adapter-{fingerprint[:6]}-{abs(hash(json.dumps(prompts, sort_keys=True))) % 10**6}"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"data": {"fingerprint": fingerprint}, "prompts": prompts}))
    return folder


def test_only_an_adapter_of_this_training_part_passes(small_synthetic, tmp_path):
    split = leave_one_out(small_synthetic)
    train = split.train_dataset()
    mine = adapter_folder(tmp_path, train.fingerprint())
    check_llm_training_data(["embedded", "openai:m@http://x", f"embedded:adapter={mine}"], train)  # no adapter, or its own data
    everything = adapter_folder(tmp_path, small_synthetic.fingerprint())  # trained on the whole data: test items included
    with pytest.raises(ScenarioError, match=r"^llm: the adapter .* was trained on other data than this run's training part"):
        check_llm_training_data([f"embedded:adapter={everything}"], train)
    unreadable = tmp_path / "empty"
    unreadable.mkdir()
    with pytest.raises(ScenarioError, match="^llm: "):
        check_llm_training_data([f"embedded:adapter={unreadable}"], train)


def test_an_adapter_tuned_on_other_prompts_than_the_users_send_is_refused(small_synthetic, tmp_path):
    train = leave_one_out(small_synthetic).train_dataset()
    today = prompt_versions()
    older_rate_question = adapter_folder(tmp_path, train.fingerprint(), {**today, "rate": today["rate"] - 1})
    with pytest.raises(ScenarioError, match=r"^llm: the adapter .* was tuned on other prompts than the users send"):
        check_llm_training_data([f"embedded:adapter={older_rate_question}"], train)
    without_versions = adapter_folder(tmp_path, train.fingerprint(), {})
    with pytest.raises(ScenarioError, match="other prompts"):
        check_llm_training_data([f"embedded:adapter={without_versions}"], train)
    other_profile_text = adapter_folder(tmp_path, train.fingerprint(), {**today, "profile": "0" * 12})
    with pytest.raises(ScenarioError, match="other prompts"):
        check_llm_training_data([f"embedded:adapter={other_profile_text}"], train)
    # A run whose users send other prompts (say, items without their statistics) names them, and its adapter must match.
    plain_items = {**today, "item": 1}
    check_llm_training_data([f"embedded:adapter={adapter_folder(tmp_path, train.fingerprint(), plain_items)}"], train, plain_items)


@pytest.mark.requires("llama_cpp")
def test_an_ab_test_with_a_broken_adapter_exits_in_one_line_and_writes_nothing(small_synthetic, tmp_path, capsys):
    from recarena.simulator.data.formats import write_atomic

    write_atomic(small_synthetic, tmp_path / "data", name="synthetic")
    # An adapter folder without its llama.cpp file or base: refused as the LLM is built, before anything is written.
    everything = adapter_folder(tmp_path, small_synthetic.fingerprint())
    code = main(["ab", "--dataset", str(tmp_path / "data"), "--user-kind", "llm", "--llm", f"embedded:adapter={everything}", "--users", "2",
                 "--out", str(tmp_path / "run"), "--no-progress", "--no-html"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("recarena: error: llm: adapter: ") and "manifest" in err[0], err
    assert not (tmp_path / "run").exists()
