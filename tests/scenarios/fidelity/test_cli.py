"""`recarena fidelity` as a person runs it: --help, and a YAML experiment on real ml-100k (statistical users, tiny)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from recarena.scenarios.cli import main
from recarena.scenarios.experiment import load_experiment

RECARENA = Path(sys.executable).with_name("recarena")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECARENA), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600)


def test_fidelity_help_documents_every_option(cli):
    done = cli("fidelity", "--help")
    assert done.returncode == 0
    for flag in ("--user-kinds", "--llm", "--users", "--llm-users", "--ratios", "--liked-rating", "--recommender", "--sessions",
                 "--rating-alignment", "--persona-users", "--out", "--seed"):
        assert flag in done.stdout, flag


def test_fidelity_from_yaml_on_ml100k_writes_results_and_report(ml100k, tmp_path):
    experiment = tmp_path / "fidelity.yaml"
    experiment.write_text(f"kind: fidelity\nuser_kinds: statistical\nusers: 25\nratios: [1, 9]\nmax_positives: 3\nbootstrap: 200\n"
                          f"sessions: 1\npages: 3\nslate_size: 5\nprogress: false\nout: {tmp_path / 'run'}\n")
    done = run("run", str(experiment))
    assert done.returncode == 0, done.stderr
    assert "popularity-threshold user" in done.stdout and "report:" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["dataset"] == "ml-100k" and results["evaluations"][0]["n_users"] == 25
    assert set(results["evaluations"][0]["discrimination"]) == {"1:1", "1:9"}
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000


def test_bad_yaml_and_flags_fail_in_one_line_naming_the_field(tmp_path, capsys, cli):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: fidelity\nratios: [1, -2]\n")
    done = cli("run", str(path))
    assert done.returncode == 2 and "ratios: 1:-2 is impossible" in done.stderr and "Traceback" not in done.stderr
    assert main(["fidelity", "--recommender", "bpx", "--out", str(tmp_path / "never")]) == 2  # the same entry point, in-process
    error = capsys.readouterr().err.strip()
    assert error.startswith("recarena: error: recommender: unknown recommender 'bpx'") and "\n" not in error
    kind, config = load_experiment(_write(tmp_path / "ok.yaml", "kind: fidelity\nllm: embedded\nuser_kinds: [statistical, hybrid]\n"))
    assert kind == "fidelity" and config.llm == ["embedded"] and config.user_kinds == ["statistical", "hybrid"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
