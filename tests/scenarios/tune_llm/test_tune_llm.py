"""`recarena tune-llm` on a tiny random Llama (--base): the whole pipeline through the CLI, the held-out parts never
reach an example, a run killed with SIGKILL resumes from its checkpoint and ends as an uninterrupted one, and bad
settings are refused in one line naming the field."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recarena.agents.profile import profile_text_digest
from recarena.scenarios.cli import main
from recarena.scenarios.tune_llm import scenario as scenario_module
from recarena.simulator.data.splits import leave_one_out

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WORKER = Path(__file__).with_name("kill_worker.py")
PLANTED_TIMESTAMP = 4_102_444_800  # 2100-01-01: no real interaction has it


def command(data: Path, base: Path, out: Path, *extra: str) -> list[str]:
    return ["tune-llm", "--dataset", str(data), "--base", str(base), "--out", str(out), "--users", "8", "--targets", "2",
            "--steps", "6", "--batch", "2", "--max-tokens", "1200", "--layers", "1", "--rank", "4", "--warmup", "1",
            "--checkpoint-every", "2", "--no-progress", *extra]  # fmt: skip


def adapters(out: Path) -> list[Path]:
    return sorted(out.glob("adapter-*"))


def test_the_cli_writes_a_content_addressed_adapter_with_its_manifest(synthetic_folder, tiny_base, tmp_path, capsys):
    assert main(command(synthetic_folder, tiny_base, tmp_path / "run")) == 0
    (folder,) = adapters(tmp_path / "run")
    assert {p.name for p in folder.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", "manifest.json"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.name == "adapter-" + manifest["content_sha256"][:12]
    assert manifest["base"]["kind"] == "hf" and len(manifest["base"]["digest"]) == 16
    assert manifest["data"]["part"] == "train" and len(manifest["data"]["fingerprint"]) == 64
    assert manifest["prompts"] == {"system": 1, "watch": 1, "rate": 1, "item": 2, "profile": profile_text_digest()}
    assert manifest["recipe"]["rank"] == 4 and manifest["examples"]["users"] == 8 and manifest["seed"] == 0
    assert [p["step"] for p in manifest["training"]["curve"]] == [1, 2, 3, 4, 5, 6]
    assert manifest["run"]["command"].startswith("recarena tune-llm --dataset ") and "--rank 4" in manifest["run"]["command"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["adapter"] == str(folder)
    printed = capsys.readouterr().out
    assert "adapter: " + str(folder) in printed and "6 steps" in printed


def test_the_model_is_measured_on_validation_questions_before_training_and_at_its_checkpoints(synthetic_folder, tiny_base, tmp_path):
    """The manifest's validation curve: step 0 is the base model, the last step the adapter written, each measured on
    the same held-out questions as the popularity and item-mean baselines."""
    import torch

    from recarena.agents.tuning.base import load_base, load_tuned
    from recarena.agents.tuning.examples import ExampleConfig
    from recarena.agents.tuning.validation import HeldOut
    from recarena.simulator.data import load_dataset

    flags = ["--valid-users", "5", "--valid-negatives", "3", "--validate-every", "3"]
    assert main(command(synthetic_folder, tiny_base, tmp_path / "run", *flags)) == 0
    (folder,) = adapters(tmp_path / "run")
    validation = json.loads((folder / "manifest.json").read_text())["validation"]
    assert [v["step"] for v in validation["curve"]] == [0, 3, 6]
    assert validation["users"] == 5 and validation["watch_questions"] == 5 * 4
    split = leave_one_out(load_dataset(str(synthetic_folder)))
    held = HeldOut.build(split.train_dataset(), split.valid, ExampleConfig(users=5, targets=1, negatives=3), seed=0)
    assert validation["baselines"] == held.baselines()
    base, tuned = load_base(tiny_base, torch.device("cpu"), progress=False), load_tuned(folder, tiny_base, torch.device("cpu"))
    for entry, loaded in ((validation["curve"][0], base), (validation["curve"][-1], tuned)):
        expected = held.measure(loaded.model, loaded.tokenizer, 1200)
        assert {k: pytest.approx(v, abs=1e-5) for k, v in expected.items()} == {k: entry[k] for k in expected}
    assert validation["curve"][0]["watch_log_loss"] != validation["curve"][-1]["watch_log_loss"]


def test_the_fidelity_split_tunes_on_the_training_part_fidelity_checks_against(synthetic_folder, tiny_base, tmp_path):
    """An adapter's manifest names the training part it saw; recarena fidelity refuses any other (test_adapter_guard)."""
    from recarena.simulator.data import load_dataset
    from recarena.simulator.data.splits import random_holdout

    assert main([*command(synthetic_folder, tiny_base, tmp_path / "run", "--split", "fidelity"), "--steps", "1"]) == 0
    (folder,) = adapters(tmp_path / "run")
    seen = json.loads((folder / "manifest.json").read_text())["data"]["fingerprint"]
    data = load_dataset(str(synthetic_folder))
    assert seen == random_holdout(data, 0.1, 0.1, seed=0).train_dataset().fingerprint()
    assert seen != leave_one_out(data).train_dataset().fingerprint()


def test_the_examples_see_the_training_part_only(small_synthetic, tiny_base, tmp_path, monkeypatch):
    """A held-out interaction planted in validation and test (a unique time, an item the user never had in training)
    reaches neither the examples nor the data they are built from."""
    import recarena.agents.tuning.pipeline as pipeline

    split = leave_one_out(small_synthetic)
    user = int(split.train["user"].value_counts().index[0])
    unseen = int(next(i for i in range(small_synthetic.n_items) if i not in set(split.train.loc[split.train["user"] == user, "item"])))
    planted_row = split.test.iloc[:1].assign(user=user, item=unseen, timestamp=PLANTED_TIMESTAMP)
    planted = dataclasses.replace(split, valid=pd.concat([split.valid, planted_row], ignore_index=True),
                                  test=pd.concat([split.test, planted_row], ignore_index=True))  # fmt: skip
    monkeypatch.setattr(scenario_module, "load_dataset", lambda name: small_synthetic)
    monkeypatch.setattr(scenario_module, "leave_one_out", lambda dataset: planted)
    seen = []
    real = pipeline.build_examples
    monkeypatch.setattr(pipeline, "build_examples", lambda data, *rest: seen.append((data, real(data, *rest))) or seen[-1][1])
    assert main(command("synthetic", tiny_base, tmp_path / "run", "--users", "0", "--steps", "1")) == 0
    ((data, examples),) = seen
    assert data.interactions.equals(planted.train)  # the training part, whole and alone
    assert PLANTED_TIMESTAMP not in set(data.interactions["timestamp"])
    assert user in {e.user for e in examples}
    assert not [e for e in examples if e.user == user and e.item == unseen and e.answer == "Yes"]
    assert PLANTED_TIMESTAMP not in {e.timestamp for e in examples}
    held_out = set(zip(planted.valid["user"], planted.valid["item"])) | set(zip(planted.test["user"], planted.test["item"]))
    train_pairs = set(zip(planted.train["user"], planted.train["item"]))
    assert not {(e.user, e.item) for e in examples if e.answer == "Yes"} & (held_out - train_pairs)


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(synthetic_folder, tiny_base, tmp_path):
    args = command(synthetic_folder, tiny_base, tmp_path / "killed")
    log = tmp_path / "checkpoints.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen([sys.executable, str(WORKER), str(log), "60", "--", *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (log.exists() and log.read_text().strip()) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert victim.poll() is None, "the run ended before it could be killed: " + (victim.stdout.read() if victim.stdout else "")
        assert log.read_text().split() == ["2"]
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not adapters(tmp_path / "killed")
    assert main(args) == 0  # the rerun resumes
    (resumed,) = adapters(tmp_path / "killed")
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest["run"]["resumed_from"] == 2
    assert main(command(synthetic_folder, tiny_base, tmp_path / "whole")) == 0
    (whole,) = adapters(tmp_path / "whole")
    assert whole.name == resumed.name  # the same weights, bit for bit, and the same manifest (times aside)
    assert (whole / "adapter_model.safetensors").read_bytes() == (resumed / "adapter_model.safetensors").read_bytes()
    first = json.loads((whole / "manifest.json").read_text())["training"]["curve"]
    assert [c["loss"] for c in first] == [c["loss"] for c in manifest["training"]["curve"]]


def test_checkpoints_of_other_settings_are_refused_in_one_line(synthetic_folder, tiny_base, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(command(synthetic_folder, tiny_base, out, "--steps", "2")) == 0
    capsys.readouterr()
    assert main(command(synthetic_folder, tiny_base, out, "--steps", "2", "--lr", "0.01")) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("recarena: error: out: ") and "recipe.lr" in error


@pytest.mark.parametrize("flags, field", [
    (["--steps", "0"], "steps"),
    (["--rank", "0"], "rank"),
    (["--lr", "0"], "lr"),
    (["--dropout", "1"], "dropout"),
    (["--targets", "0"], "targets"),
    (["--max-tokens", "4"], "max_tokens"),
    (["--modules", "q_proj", "nope_proj"], "modules"),
])  # fmt: skip
def test_bad_settings_are_refused_in_one_line_naming_the_field(synthetic_folder, tiny_base, tmp_path, capsys, flags, field):
    out = tmp_path / "run"
    assert main(command(synthetic_folder, tiny_base, out, *flags)) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith(f"recarena: error: {field}: "), error
    assert not adapters(out)


def test_a_base_that_is_not_a_model_folder_is_refused_before_any_work(synthetic_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for base in (tmp_path / "missing", tmp_path / "empty"):
        assert main(command(synthetic_folder, base, tmp_path / "run")) == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and error.startswith("recarena: error: base: "), error
    assert not (tmp_path / "run").exists()
