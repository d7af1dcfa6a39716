"""The A/B test's self-checks with statistical users on ml-100k: A/A false positives near alpha on
every metric, a planted effect found at its stated power, and a clearly better recommender (BPR)
beating Random; plus the run directory it leaves.

The A/A checks here are the suite's cheap version: their bounds are wide enough that an honest
test (a true false-positive rate of 0.05) fails under 0.5% per metric, so a failure means something;
what they cannot do in the suite's time is catch a rate of 0.08 reliably (250 runs pass it 80% of
the time, 1400 runs would be needed for 5%). benchmarks/aa_power.py runs 2000 runs per design
(a true 0.08 passes 0.4% of the time) and the planted effects' power curve: BENCHMARKS.md,
"The A/A self-check's power"."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from scipy import stats

from recarena.scenarios.ab.scenario import ABConfig, build_world, run_ab
from recarena.scenarios.ab.selfcheck import run_aa
from recarena.scenarios.comparisons import false_positive_bounds

AA_METRICS = ("watch_rate", "mean_rating", "pages", "satisfaction")
TAIL = 0.0025
"""Each side's chance that an honest metric falls outside its bounds (under 0.5% per metric, 2% for four)."""


def rate_bounds(runs: int, alpha: float = 0.05) -> tuple[int, int]:
    """Counts [lo, hi] of runs with p < alpha that a true rate of `alpha` leaves with probability under TAIL each side."""
    return false_positive_bounds(runs, alpha, TAIL)


def assert_honest(result: dict) -> None:
    """Every metric of an A/A result: the count of runs with p < alpha within `rate_bounds`, the p-values
    uniform (KS p > 0.001) and the mean of z^2 (the p-value's normal score squared; 1 for a true null,
    c^2 for a statistic inflated by c) within its chi-squared bounds at TAIL each side."""
    runs = result["runs"]
    lo, hi = rate_bounds(runs, result["alpha"])
    z2_lo, z2_hi = stats.chi2.ppf(TAIL, runs) / runs, stats.chi2.isf(TAIL, runs) / runs
    assert set(result["p_values"]) == set(AA_METRICS)
    for metric in AA_METRICS:
        p = np.asarray(result["p_values"][metric], float)
        assert len(p) == runs and np.isfinite(p).all(), metric
        count = int((p < result["alpha"]).sum())
        assert lo <= count <= hi, (metric, count, (lo, hi), result["false_positive_rate"])
        assert stats.kstest(p, "uniform").pvalue > 0.001, metric  # p-values of a true null are uniform
        z2 = float(np.mean(stats.norm.isf(np.clip(p, 1e-300, 1.0) / 2) ** 2))
        assert z2_lo <= z2 <= z2_hi, (metric, z2, (z2_lo, z2_hi))


@pytest.fixture(scope="module")
def world(ml100k):
    # One world for the module: pop, random and bpr fitted once, one users' kit.
    return build_world(ABConfig(arms="pop,random,bpr", progress=False).world_spec())


def test_the_stated_bounds_and_power_are_what_scipy_computes():
    """The probabilities the A/A and planted-effect tests below state, computed (binomial, chi-squared)."""
    binom = stats.binom
    # Paired, 250 runs: counts [4, 23], rates [0.016, 0.092].
    assert rate_bounds(250) == (4, 23)
    assert binom.sf(23, 250, 0.05) + binom.cdf(3, 250, 0.05) == pytest.approx(0.0031, abs=5e-5)  # an honest metric fails
    assert binom.cdf(23, 250, 0.08) - binom.cdf(3, 250, 0.08) == pytest.approx(0.796, abs=5e-4)  # a true 0.08 passes
    assert binom.cdf(23, 250, 0.10) - binom.cdf(3, 250, 0.10) == pytest.approx(0.386, abs=5e-4)  # a true 0.10 passes
    # ... and the z^2 bound catches a statistic inflated by c = 1.12 (c^2 = 1.253: a rate of 0.08) 43% of the time.
    c = stats.norm.isf(0.025) / stats.norm.isf(0.04)
    assert 2 * stats.norm.sf(1.96 / c) == pytest.approx(0.08, abs=1e-4)
    assert stats.chi2.sf(stats.chi2.isf(TAIL, 250) / c**2, 250) == pytest.approx(0.431, abs=5e-4)
    # Split, 160 runs: counts [1, 17]; an honest metric fails 0.14%, a true 0.10 passes 66%, 0.12 35%.
    assert rate_bounds(160) == (1, 17)
    assert binom.sf(17, 160, 0.05) + binom.cdf(0, 160, 0.05) == pytest.approx(0.0014, abs=5e-5)
    assert binom.cdf(17, 160, 0.10) - binom.cdf(0, 160, 0.10) == pytest.approx(0.664, abs=5e-4)
    # Planted effect: the power of the paired t against +0.0257 watch rate when the A/A difference's SD is 0.00697 ...
    assert stats.norm.cdf(0.0257 / 0.00697 - 1.96) + stats.norm.cdf(-0.0257 / 0.00697 - 1.96) == pytest.approx(0.958, abs=5e-4)
    # ... and at least 40 detections of 50 fail 0.015% of the time at the power measured, 0.94; 0.9% at 0.9; a
    # power fallen to 0.6 passes 0.2% of the time.
    assert binom.cdf(39, 50, 0.94) == pytest.approx(0.00015, abs=5e-6)
    assert binom.cdf(39, 50, 0.90) == pytest.approx(0.0094, abs=5e-5)
    assert binom.sf(39, 50, 0.60) == pytest.approx(0.0022, abs=5e-5)


def test_aa_false_positive_rate_sits_near_alpha_on_every_metric(world):
    """Paired A/A, 250 runs of 200 users (the vectorised path): every metric's count of p < 0.05 in [4, 23]
    (an honest metric fails 0.31% of the time; a true rate of 0.08 passes 80%, 0.10 39%: the powered figure
    is benchmarks/aa_power.py's), its p-values uniform and its mean z^2 in [0.767, 1.269]."""
    result = run_aa(ABConfig(arms="pop", aa=True, users=200, progress=False), world, runs=250)
    assert_honest(result)
    assert result["planted_watch_shift"] == 0.0
    sd = np.std(result["differences"]["watch_rate"])
    assert abs(result["mean_difference"]["watch_rate"]) < 4 * sd / np.sqrt(250)  # no arm is favoured


PLANTED_SHIFT = 0.25
"""The planted effect: the second arm's users' watch logits +0.25, +0.0257 watch rate on pop's pages. With the
A/A runs' SD of the watch-rate difference (0.00697 on 200 paired users, 2000 runs) the paired t at alpha 0.05
has power Phi(0.0257 / 0.00697 - 1.96) = 0.96; 200 planted runs found it in 0.94 (benchmarks/aa_power.py,
BENCHMARKS.md)."""


def test_a_planted_effect_is_detected_at_its_stated_power(world):
    """A watch-logit shift of +0.25 in arm B (+0.026 watch rate, power 0.96) is found (p < 0.05) in at least 40 of 50 runs."""
    result = run_aa(ABConfig(arms="pop", aa=True, users=200, seed=1, progress=False), world, runs=50, planted_watch_shift=PLANTED_SHIFT)
    assert 0.020 < result["mean_difference"]["watch_rate"] < 0.031, result["mean_difference"]  # the stated size
    detected = int((np.asarray(result["p_values"]["watch_rate"]) < 0.05).sum())
    assert detected >= 40, (detected, result["false_positive_rate"])


def test_bpr_beats_random_on_watch_rate_with_200_users(world, tmp_path):
    config = ABConfig(arms="random,bpr", users=200, out=tmp_path / "run", progress=False, html=False,
                      model_params=["bpr.progress=false"])
    results = run_ab(config, world)
    watch = next(c for c in results["comparisons"] if c["arm"] == "bpr" and c["metric"] == "watch_rate")
    assert watch["p_value"] < 0.01 and watch["p_holm"] < 0.01
    assert watch["effect"] > 0 and watch["ci_low"] > 0
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["control"] == "random" and set(stored["arms"]) == {"random", "bpr"}
    assert {"seed", "config", "versions"} <= set(json.loads((tmp_path / "run" / "run.json").read_text()))
    with sqlite3.connect(tmp_path / "run" / "events.sqlite") as db:
        per_arm = dict(db.execute("SELECT arm, COUNT(*) FROM sessions GROUP BY arm").fetchall())
    assert per_arm == {"random": 200, "bpr": 200}  # paired: every user met both arms


def test_a_rerun_resumes_without_new_sessions_and_gives_the_same_figures(world, tmp_path):
    config = ABConfig(arms="pop,bpr", users=40, out=tmp_path / "run", progress=False, html=False, bootstrap=200,
                      model_params=["bpr.progress=false"])
    first = run_ab(config, world)
    second = run_ab(config, world)
    assert second["run"]["resumed"]
    strip = lambda arms: {a: {k: v for k, v in f.items() if k != "llm"} for a, f in arms.items()}  # noqa: E731 (wall times differ)
    assert strip(first["arms"]) == strip(second["arms"]) and first["comparisons"] == second["comparisons"]


def test_the_fast_aa_path_behaves_like_the_session_engine(world):
    """The A/A check's vectorised path and the engine draw differently but must agree on average."""
    from recarena.scenarios.ab import metrics as am
    from recarena.simulator.arm_sessions import Twins, fast_statistical_sessions, records_to_frames, simulate_arm

    users = np.arange(0, 900, 3)
    fast = fast_statistical_sessions(world.kit, world.recommenders["pop"], users, pages=5, slate_size=10, rng=np.random.default_rng(0))
    run = simulate_arm("ab", "pop", 0, world.recommenders["pop"], Twins(world.kit.statistical_user, users, 0), users, seed=0, pages=5, slate_size=10)
    engine = am.user_metrics(*records_to_frames(run.records), users, world.dataset)
    for metric, tolerance in (("watch_rate", 0.02), ("pages", 0.3), ("satisfaction", 0.4)):
        assert abs(fast[metric].mean() - engine[metric].mean()) < tolerance, metric


def test_split_design_users_are_disjoint_and_its_aa_is_honest(world):
    """(That paired twins start alike is tests/simulator/test_twins.py's.)"""
    from recarena.scenarios.ab.scenario import assign_users

    split = ABConfig(arms="pop,random,bpr", users=90, design="split")
    users, arms = assign_users(split.assignment(), world.dataset.n_users, 0)
    assert sorted(np.concatenate(list(arms.values())).tolist()) == users.tolist()
    assert all(len(a) == 30 for a in arms.values())
    # A/A under the split design is also honest on every metric: 160 runs of 100 users (50 per arm), counts in
    # [1, 17] (an honest metric fails 0.14% of the time; a true 0.10 passes 66%, where the old 40-run check
    # passed it 90%).
    assert_honest(run_aa(ABConfig(arms="pop", aa=True, users=100, design="split", progress=False), world, runs=160))
