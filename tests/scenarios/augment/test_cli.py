"""`recarena augment` and `recarena run` with ``kind: augment`` as a person runs them: real ml-100k, tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recarena.scenarios.cli import main
from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.experiment import load_experiment

RECARENA = Path(sys.executable).with_name("recarena")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECARENA), *args], check=False, capture_output=True, text=True, env=os.environ.copy(), timeout=600)


def test_augment_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--recommenders", "--regimes", "--sparse-min", "--sparse-max", "--user-kind", "--browse", "--ratio", "--seeds",
                 "--model-params", "--out", "--seed"):  # fmt: skip
        assert flag in text


def test_yaml_experiment_on_ml100k_writes_results_report_and_synthetic_data(ml100k, tmp_path):
    experiment = tmp_path / "augment.yaml"
    experiment.write_text(
        "kind: augment\ndataset: ml-100k\nrecommenders: [bpr]\nmodel_params: [bpr.epochs=1, bpr.dim=8]\nregimes: sparse\n"
        f"users: 25\nseeds: 1\nsessions: 1\npages: 2\nbootstrap: 100\npreference_epochs: 3\nprogress: false\nout: {tmp_path / 'run'}\n"
    )
    done = run("run", str(experiment))
    assert done.returncode == 0, done.stderr
    assert "sparse training" in done.stdout and "simulated vs real" in done.stdout and "report:" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    block = results["regimes"]["sparse"]
    assert block["models"]["bpr"]["test_users"] == ml100k.n_users
    assert 0 < block["volumes"][0]["simulated_users"] <= 25
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000
    assert (tmp_path / "run" / "synthetic" / "sparse" / "ml-100k-real+simulated" / "ml-100k-real+simulated.inter").is_file()


@pytest.mark.parametrize("args, field", [(("--recommenders", "bpr,bpx"), "recommenders"), (("--ratio", "0"), "ratio"),
                                         (("--regimes", "tiny"), "regimes")])  # fmt: skip
def test_bad_flags_fail_in_one_line_naming_the_field(args, field, capsys):
    assert main(["augment", *args, "--no-progress"]) == 2  # the CLI's own entry point, in-process (no interpreter start-up)
    error = capsys.readouterr().err
    assert field in error and "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_bad_yaml_key_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: augment\nratio: -1\n")
    with pytest.raises(ScenarioError, match="ratio"):
        load_experiment(path)
