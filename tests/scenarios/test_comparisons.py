"""The A/B statistics against hand-computed and textbook cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recarena.scenarios.comparisons import (
    bootstrap_ci, compare_users, coverage_of, gini_of, holm, p_value_of, population_comparison, t_test_power, users_for_power,
)


def test_holm_matches_a_hand_computed_family():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_ignores_nans_and_caps_at_one():
    out = holm([0.5, float("nan"), 0.4])
    assert math.isnan(out[1]) and np.allclose(out[[0, 2]], [0.8, 0.8])


def test_paired_t_matches_the_formula():
    control = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    arm = np.array([1.5, 2.9, 3.1, 4.8, 5.2])
    diff = arm - control  # mean 0.5, sd computed by hand below
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(5))
    from scipy import stats

    assert p_value_of(control, arm, "paired", "t") == pytest.approx(2 * stats.t.sf(abs(t), 4))


def test_welch_and_rank_tests_detect_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.5, 1, 300)
    for kind in ("t", "rank"):
        assert p_value_of(a, b, "split", kind) < 1e-6
        assert p_value_of(a, rng.normal(0, 1, 300), "split", kind) > 0.01


def test_power_matches_textbook_sample_sizes():
    # Cohen / G*Power: d = 0.5, alpha 0.05, power 0.8 -> 64 per group (two-sample), 34 pairs (paired).
    assert users_for_power(0.5, "split") == 64
    assert users_for_power(0.5, "paired") == 34
    assert t_test_power(64, 0.5, "split") >= 0.8 > t_test_power(63, 0.5, "split")
    assert users_for_power(0.0, "paired") == math.inf


def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        control, arm = rng.normal(0, 1, 60), rng.normal(0.3, 1, 60)
        low, high = bootstrap_ci(control, arm, "split", rng, n_boot=400)
        hits += low <= 0.3 <= high
    assert 0.89 <= hits / 200 <= 0.99


def test_compare_users_drops_undefined_pairs_and_reports_the_effect():
    control = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 2.0])
    arm = np.array([2.0, 3.0, 5.0, 5.0, 4.5, 2.5])
    c = compare_users("m", "b", control, arm, "paired", "t", np.random.default_rng(0), n_boot=500)
    assert c.n_control == c.n_arm == 5
    assert c.effect == pytest.approx(np.mean(arm[[0, 1, 3, 4, 5]] - control[[0, 1, 3, 4, 5]]))
    assert c.ci_low <= c.effect <= c.ci_high and c.test == "paired t"


def test_gini_and_coverage_of_known_vectors():
    assert gini_of(np.array([[1.0, 1.0, 1.0, 1.0]]))[0] == pytest.approx(0.0)
    assert gini_of(np.array([[0.0, 0.0, 0.0, 4.0]]))[0] == pytest.approx(0.75)
    assert coverage_of(np.array([[0, 2, 0, 1]]))[0] == pytest.approx(0.5)


def test_population_comparison_interval_contains_its_effect_and_finds_a_real_difference():
    rng = np.random.default_rng(2)
    narrow = np.zeros((80, 100))
    narrow[:, :10] = 1  # every user sees the same 10 items
    wide = np.zeros((80, 100))
    for row in wide:
        row[rng.choice(100, 10, replace=False)] = 1
    c = population_comparison("coverage", "wide", narrow, wide, coverage_of, "paired", rng, n_boot=300, n_permutations=300)
    assert c.effect == pytest.approx(0.9) and c.ci_low <= c.effect <= c.ci_high and c.p_value < 0.01
