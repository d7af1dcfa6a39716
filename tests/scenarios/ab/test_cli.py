"""`recarena ab` and `recarena run experiment.yaml` as a person runs them (statistical users, small)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.experiment import load_experiment

RECARENA = Path(sys.executable).with_name("recarena")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECARENA), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600)


def test_ab_help_documents_every_option(cli):
    done = cli("ab", "--help")
    assert done.returncode == 0
    for flag in ("--arms", "--control", "--users", "--pages", "--user-kind", "--llm", "--design", "--test", "--aa", "--explore", "--out", "--seed"):
        assert flag in done.stdout


def test_run_from_yaml_writes_results_and_report(ml100k, tmp_path):
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(f"kind: ab\narms: [random, pop]\nusers: 30\npages: 2\nbootstrap: 200\nprogress: false\nout: {tmp_path / 'run'}\n")
    done = run("run", str(experiment))
    assert done.returncode == 0, done.stderr
    assert "effects against random" in done.stdout and "report:" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["arms"]) == {"random", "pop"} and results["comparisons"]
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize(
    "text, needle",
    [("arms: pop\nusers: many\n", "users: expected int"), ("armz: pop\n", "armz: unknown option"),
     ("arms: pop,bpr\ndesign: both\n", "design: 'both' is not one of"), ("arms: [pop]\n", "arms: need at least two arms")],
)
def test_bad_yaml_fails_in_one_line_naming_the_key(tmp_path, text, needle, cli):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=needle):
        load_experiment(path)
    done = cli("run", str(path))
    assert done.returncode == 2 and needle.split(":")[0] in done.stderr and "Traceback" not in done.stderr


def test_unknown_arm_is_a_one_line_error(cli):
    done = cli("ab", "--arms", "pop,bpx")
    assert done.returncode == 2 and "bpx" in done.stderr and "Traceback" not in done.stderr
