"""The agreement figures on planted data: orders that match, orders that are reversed, and pairs
whose real difference is clear or not."""

from __future__ import annotations

import numpy as np
import pytest

from recarena.scenarios.agreement.orders import concordance, pair_verdicts, rank_agreement

ARMS = ["random", "pop", "bpr", "sasrec"]


def side(means: list[float], users: int, noise: float, seed: int) -> dict[str, np.ndarray]:
    """Per arm, `users` figures around its mean (the same users for every arm: a user effect is shared)."""
    rng = np.random.default_rng(seed)
    user_effect = rng.normal(0, noise, users)
    return {arm: mean + user_effect + rng.normal(0, noise, users) for arm, mean in zip(ARMS, means)}


def test_matching_orders_agree_with_a_tight_interval():
    real = side([0.01, 0.04, 0.07, 0.10], 900, 0.02, 0)
    simulated = side([0.02, 0.15, 0.25, 0.30], 300, 0.05, 1)
    result = rank_agreement(real, simulated, np.random.default_rng(2), n_boot=300)
    assert result.spearman == pytest.approx(1.0) and result.kendall == pytest.approx(1.0)
    assert result.spearman_ci[0] > 0.7
    assert result.real_order == ARMS and result.simulated_order == ARMS


def test_a_reversed_simulation_is_negative():
    real = side([0.01, 0.04, 0.07, 0.10], 900, 0.02, 0)
    simulated = side([0.30, 0.25, 0.15, 0.02], 300, 0.05, 1)
    result = rank_agreement(real, simulated, np.random.default_rng(2), n_boot=300)
    assert result.spearman == pytest.approx(-1.0) and result.spearman_ci[1] < -0.7
    assert result.simulated_order == ARMS[::-1]


def test_noise_widens_the_interval():
    real = side([0.01, 0.04, 0.07, 0.10], 900, 0.02, 0)
    sharp = rank_agreement(real, side([0.02, 0.15, 0.25, 0.30], 300, 0.05, 1), np.random.default_rng(2), n_boot=300)
    blurred = rank_agreement(real, side([0.02, 0.15, 0.25, 0.30], 12, 0.6, 1), np.random.default_rng(2), n_boot=300)
    assert blurred.spearman_ci[1] - blurred.spearman_ci[0] > sharp.spearman_ci[1] - sharp.spearman_ci[0]


def test_pair_verdicts_name_agreement_disagreement_and_unclear_pairs():
    # sasrec beats bpr clearly in reality, but the simulation prefers bpr; random and pop are a tie in reality.
    real = side([0.050, 0.0505, 0.07, 0.10], 900, 0.01, 0)
    simulated = side([0.02, 0.15, 0.30, 0.25], 300, 0.02, 1)
    verdicts = {(v.better, v.other): v for v in pair_verdicts(real, simulated, np.random.default_rng(3), n_boot=300)}
    assert verdicts[("sasrec", "bpr")].verdict == "disagree"
    assert verdicts[("bpr", "pop")].verdict == "agree"
    assert verdicts[("pop", "random")].verdict == "unclear" and not verdicts[("pop", "random")].real_clear
    summary = concordance(list(verdicts.values()))
    assert summary["disagree"] == 1 and summary["unclear"] == 1 and summary["clear_pairs"] == 5
    assert summary["concordance"] == pytest.approx(4 / 5)
    assert summary["same_direction"] == 4  # the reversed pair is the one clear pair ordered the other way


def test_an_indistinct_simulation_is_undecided():
    real = side([0.01, 0.04, 0.07, 0.10], 900, 0.01, 0)
    simulated = side([0.2, 0.2, 0.2, 0.2], 300, 0.05, 1)
    verdicts = pair_verdicts(real, simulated, np.random.default_rng(3), n_boot=300)
    assert {v.verdict for v in verdicts} == {"undecided"}
    assert np.isnan(concordance([v for v in verdicts if v.verdict == "unclear"])["concordance"])


def test_sides_must_be_paired_and_hold_the_same_arms():
    real = side([0.01, 0.04, 0.07, 0.10], 50, 0.01, 0)
    with pytest.raises(ValueError, match="same, non-zero number of users"):
        rank_agreement({**real, "pop": real["pop"][:10]}, real, np.random.default_rng(0))
    with pytest.raises(ValueError, match="differ"):
        rank_agreement(real, {k: v for k, v in real.items() if k != "pop"} | {"tiger": real["pop"]}, np.random.default_rng(0))
