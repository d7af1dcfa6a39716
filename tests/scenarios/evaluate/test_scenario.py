"""`evaluate` as a registered scenario: the same report from `recarena evaluate`, the registry and a YAML file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recarena.scenarios.checker import check_validation_names_field
from recarena.scenarios.evaluate.scenario import EvaluateConfig, format_report
from recarena.scenarios.registry import SCENARIOS

RECARENA = Path(sys.executable).with_name("recarena")


def test_the_registry_runs_it_and_summarises_it_as_the_command_prints(ml100k, tmp_path):
    scenario = SCENARIOS["evaluate"]
    results = scenario.run(EvaluateConfig(model="pop", k=[10], out=tmp_path / "pop.json", progress=False))
    assert json.loads((tmp_path / "pop.json").read_text())["models"] == json.loads(json.dumps(results["models"]))
    assert scenario.summary(results) == format_report(results) + f"\nresults written to {tmp_path / 'pop.json'}"
    assert "progress" not in results["config"]  # the JSON keeps its keys


def test_a_yaml_file_of_kind_evaluate_prints_the_report(ml100k, tmp_path):
    out = tmp_path / "pop.json"
    experiment = tmp_path / "evaluate.yaml"
    experiment.write_text(f"kind: evaluate\nmodel: pop\nk: [5, 10]\nout: {out}\n")
    done = subprocess.run([str(RECARENA), "run", str(experiment)], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "full ranking, test part:" in done.stdout and "ndcg@5" in done.stdout and f"results written to {out}" in done.stdout
    assert set(json.loads(out.read_text())["models"]) == {"pop", "random"}


@pytest.mark.parametrize("field, bad", [("k", [0]), ("model_params", ["dimm=3"])])
def test_bad_settings_are_one_line_errors_naming_the_field(field, bad):
    check_validation_names_field(EvaluateConfig, field, bad, model="bpr")
