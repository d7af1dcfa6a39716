"""`recarena agreement` at a tiny size: ml-100k, three cheap recommenders whose real order is clear, 40 users, 2 pages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recarena.scenarios.agreement.scenario import AgreementConfig, AgreementScenario
from recarena.scenarios.checker import check_report_renders, check_scenario
from recarena.scenarios.contract import ScenarioError
from recarena.simulator.events import EventStore

RECARENA = Path(sys.executable).with_name("recarena")
TINY = dict(arms="random,pop,itemknn", users=40, pages=2, bootstrap=200, progress=False)


@pytest.fixture(scope="module")
def checked(ml100k, tmp_path_factory):
    config = AgreementConfig(**TINY, out=tmp_path_factory.mktemp("agreement") / "run")
    return check_scenario(AgreementScenario(), config), config


def test_the_dynamic_users_order_the_arms_as_reality_does(checked):
    results, _ = checked
    real = results["real"]
    assert real["random"]["ndcg@10"] < real["pop"]["ndcg@10"] < real["itemknn"]["ndcg@10"]  # clear in reality
    dynamic = results["user_models"]["dynamic"]
    assert dynamic["rank"]["simulated_order"] == ["random", "pop", "itemknn"]
    assert dynamic["rank"]["spearman"] == pytest.approx(1.0) and dynamic["best_agrees"]
    assert dynamic["concordance"]["disagree"] == 0 and dynamic["concordance"]["clear_pairs"] == 3
    # The users' own model as a recommender beats random (a reader sees how much the users know).
    assert dynamic["own_ndcg"] > 5 * real["random"]["ndcg@10"]
    assert set(results["user_models"]) == {"dynamic", "static"}  # today's static users, measured in the same run
    assert results["dynamics"]["chosen"] in results["dynamics"]["variants"]
    assert len(results["users"]) == 40


def test_the_simulated_sessions_are_stored_and_a_rerun_simulates_nothing_again(checked):
    results, config = checked
    with EventStore(config.out / "events.sqlite") as store:
        for user_model in ("dynamic", "static"):
            sessions = store.sessions(f"agreement.{user_model}")
            assert len(sessions) == 40 * 3
    again = AgreementScenario().run(config)
    assert again["run"]["resumed"]
    assert again["user_models"] == results["user_models"]


def test_report_has_the_scatter_and_renders(checked, tmp_path, require):
    _, config = checked
    page = (config.out / "report.html").read_text()
    assert "Spearman" in page and "the users' own model" in page and "Pairs, dynamic users" in page
    assert page.count('<img alt="plot"') == 1
    require("chromium")
    assert check_report_renders(config.out / "report.html", screenshot=tmp_path / "report.png", min_images=1)["images"] == 1


@pytest.mark.parametrize("field, value, needle", [("arms", "pop,random", "at least three"), ("arms", "pop,pop,random", "each recommender once"),
                                                  ("test_fraction", 0.9, "test_fraction"), ("users", 2, "users")])
def test_bad_settings_are_refused_naming_the_field(field, value, needle, tmp_path):
    config = AgreementConfig(**{**TINY, field: value, "out": tmp_path / "run"})
    with pytest.raises(ScenarioError, match=needle):
        AgreementScenario().run(config)
    assert not (tmp_path / "run" / "run.json").exists()


def test_the_cli_runs_it(checked, tmp_path):
    shutil.copytree(checked[1].out / "models", tmp_path / "run" / "models")  # fitted once, in the fixture
    done = subprocess.run([str(RECARENA), "agreement", "--arms", "random,pop,itemknn", "--users", "12", "--pages", "1", "--bootstrap", "100",
                           "--no-compare-static", "--no-progress", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "%|" not in done.stderr and "it/s" not in done.stderr  # --no-progress: no bar at all, the models' training included
    assert "real ndcg@10: random" in done.stdout and "dynamic users, watch_rate" in done.stdout and "static users" not in done.stdout
    assert json.loads((tmp_path / "run" / "results.json").read_text())["metric"] == "watch_rate"


def test_the_ab_report_summarises_an_agreement_run_or_says_there_is_none(checked, tmp_path):
    from recarena.scenarios.agreement.summary import agreement_summary, summary_html

    results, config = checked
    summary = agreement_summary(config.out, "ml-100k", "dynamic")
    assert summary["spearman"] == pytest.approx(results["user_models"]["dynamic"]["rank"]["spearman"]) and summary["note"] == ""
    assert summary["arms"][0] == "itemknn" and "How far this simulator was checked" in summary_html(summary)
    elsewhere = agreement_summary(config.out, "ml-1m", "dynamic")
    assert "checked dataset 'ml-100k', not 'ml-1m'" in elsewhere["note"] and "Caveat" in summary_html(elsewhere)
    assert agreement_summary(tmp_path, "ml-100k", "dynamic") is None
    assert "Not checked against reality here" in summary_html(None)
