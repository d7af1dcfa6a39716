"""Off-policy estimators against a known answer: a synthetic slot bandit with exact propensities."""

from __future__ import annotations

import numpy as np

from recarena.scenarios.ab.ope import estimate, fit_reward_model


def test_ips_snips_dr_recover_the_target_value_when_supported():
    rng = np.random.default_rng(0)
    users, k, pool_size, epsilon = 20_000, 3, 6, 0.5
    pool = np.tile(np.arange(pool_size), (users, 1))
    ctr = np.linspace(0.6, 0.1, pool_size)  # item i's watch probability at every slot
    target = np.tile(np.array([5, 3, 4]), (users, 1))  # the items the control ranks last
    truth = ctr[target].mean()
    explore = rng.random(users) < epsilon
    logged = np.where(explore[:, None], np.argsort(rng.random((users, pool_size)), 1)[:, :k], pool[:, :k])
    rewards = (rng.random((users, k)) < ctr[logged]).astype(int)
    constant = np.full(target.shape, rewards.mean())  # a poor reward model: DR must still be right
    figures = estimate(logged, rewards, target, pool, epsilon, constant)
    for name in ("ips", "snips", "dr"):
        assert abs(figures[name] - truth) < 0.02, (name, figures[name], truth)
    assert figures["support"] == 1.0
    assert abs(rewards.mean() - truth) > 0.1  # the naive logged rate is far off


def test_reward_model_fits_a_logistic_truth():
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(5000), rng.normal(size=5000)])
    y = rng.random(5000) < 1 / (1 + np.exp(-(x @ np.array([-1.0, 2.0]))))
    assert np.allclose(fit_reward_model(x, y, l2=0.0), [-1.0, 2.0], atol=0.15)
