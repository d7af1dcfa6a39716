"""The feedback-loop scenario: the scenario contract on a tiny run, per-round figures, arms starting alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recarena.scenarios.checker import check_scenario
from recarena.scenarios.feedback_loop.scenario import FeedbackConfig, FeedbackLoopScenario, bootstrap_change
from recarena.scenarios.registry import SCENARIOS
from recarena.simulator.metrics import FIGURES


@pytest.fixture(scope="module")
def checked(ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("feedback") / "run"
    config = FeedbackConfig(arms="pop,pop+frozen,pop+mmr+epsilon", users=30, rounds=2, pages=2, bootstrap=200, progress=False, out=out)
    return check_scenario(SCENARIOS["feedback-loop"], config), out


def test_scenario_contract_holds_and_reruns_identically(checked):
    results, out = checked
    assert isinstance(SCENARIOS["feedback-loop"], FeedbackLoopScenario)
    assert json.loads((out / "results.json").read_text())["arms"].keys() == results["arms"].keys()
    assert (out / "report.html").is_file() and (out / "models" / "pop" / "recommender.json").is_file()
    for label in ("pop", "pop_frozen", "pop_mmr_epsilon"):
        assert (out / "arms" / label / "events.sqlite").is_file()


def test_every_round_has_every_figure_and_arms_start_alike(checked):
    results, _ = checked
    arms = results["arms"]
    for arm in arms.values():
        assert [set(r) for r in arm["rounds"]] == [set(FIGURES)] * 2
        assert arm["first"]["top_genre_share"] >= 1 / results["n_genres"]
    # same users, same activity draws and the same model: pop and frozen pop see identical first rounds
    assert arms["pop"]["rounds"][0] == arms["pop+frozen"]["rounds"][0]
    assert arms["pop"]["rounds"][0]["sessions"] == arms["pop+mmr+epsilon"]["rounds"][0]["sessions"]
    assert arms["pop+frozen"]["frozen"] and arms["pop+mmr+epsilon"]["explore"]["epsilon"] > 0


def test_bootstrap_change_brackets_a_real_shift():
    rng = np.random.default_rng(0)
    first, last = rng.normal(0.30, 0.05, 200), rng.normal(0.36, 0.05, 200)
    change = bootstrap_change(first, last, rng, 1000)
    assert change["ci_low"] < change["change"] < change["ci_high"]
    assert 0.04 < change["ci_low"] and change["ci_high"] < 0.08
    assert bootstrap_change(first[:1], last, rng, 1000)["change"] is None
