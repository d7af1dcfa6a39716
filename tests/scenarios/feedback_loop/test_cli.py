"""`recarena feedback-loop` as a person runs it: --help, a YAML experiment on tiny sizes, the report in chromium, bad settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recarena.scenarios.checker import check_report_renders, check_validation_names_field
from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.experiment import load_experiment
from recarena.scenarios.feedback_loop.scenario import FeedbackConfig

RECARENA = Path(sys.executable).with_name("recarena")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECARENA), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600)


def test_help_documents_every_option(cli):
    done = cli("feedback-loop", "--help")
    assert done.returncode == 0, done.stderr
    for flag in ("--arms", "--users", "--rounds", "--pages", "--activity", "--update-every", "--epsilon", "--mmr", "--pool",
                 "--user-kind", "--llm", "--model-params", "--out", "--seed"):  # fmt: skip
        assert flag in done.stdout, flag
    assert "feedback-loop" in cli("--help").stdout


@pytest.fixture(scope="module")
def yaml_run(ml100k, tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback-cli")
    experiment = root / "loop.yaml"
    experiment.write_text(f"kind: feedback-loop\narms: [random, pop, pop+mmr, pop+epsilon]\nusers: 40\nrounds: 3\npages: 2\n"
                          f"bootstrap: 200\nprogress: false\nout: {root / 'run'}\n")  # fmt: skip
    done = run("run", str(experiment))
    return done, root / "run"


def test_yaml_run_writes_results_and_report(yaml_run):
    done, out = yaml_run
    assert done.returncode == 0, done.stderr
    assert "feedback loop on ml-100k: 4 arms" in done.stdout and "report:" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {"random", "pop", "pop+mmr", "pop+epsilon"}
    for arm in results["arms"].values():
        assert len(arm["rounds"]) == 3 and arm["rounds"][0]["sessions"] > 0
        assert 0 < arm["first"]["top_genre_share"] <= 1 and arm["first"]["genres_shown"] >= 1
    arms = results["arms"]
    # re-ranking for genre diversity does what it says on the first round already, before any learning
    assert arms["pop+mmr"]["first"]["intra_list_diversity"] > arms["pop"]["first"]["intra_list_diversity"]
    assert arms["pop+epsilon"]["first"]["coverage"] > arms["pop"]["first"]["coverage"]
    page = (out / "report.html").read_text()
    for heading in ("Arms", "Filter bubble over rounds", "Exposure and engagement over rounds", "First and last round"):
        assert f"<h2>{heading}" in page, heading
    assert len(re.findall(r'<img alt="plot" src="data:image/png;base64,', page)) == 2
    assert "http://" not in page and "https://" not in page


def test_report_renders_in_headless_chromium(yaml_run, tmp_path, require):
    require("chromium")
    done, out = yaml_run
    assert done.returncode == 0, done.stderr
    rendered = check_report_renders(out / "report.html", screenshot=tmp_path / "report.png", min_images=2)
    assert rendered["screenshot"].stat().st_size > 20_000


@pytest.mark.parametrize(
    "field, bad",
    [("arms", "pop,bpx"), ("arms", "pop+boost"), ("arms", "pop,pop"), ("epsilon", 1.5), ("mmr", 1.0), ("activity", [0.2, 1.4, 0.7]),
     ("activity", [0.5]), ("users", 1), ("rounds", 0), ("update_every", -1)],
)  # fmt: skip
def test_bad_setting_is_a_one_line_error_naming_the_field(field, bad):
    check_validation_names_field(FeedbackConfig, field, bad)


def test_bad_yaml_and_flags_fail_in_one_line(tmp_path, cli):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: feedback-loop\narms: pop,sasrekt\n")
    with pytest.raises(ScenarioError, match="arms: unknown recommender 'sasrekt'"):
        load_experiment(path)
    done = cli("run", str(path))
    assert done.returncode == 2 and "arms" in done.stderr and "Traceback" not in done.stderr
