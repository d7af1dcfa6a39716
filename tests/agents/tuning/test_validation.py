"""Held-out questions measure the users' LLM: the LLM user's own questions about held-out items, profiles from the
training part, never-had negatives; AUC as the pairwise definition; figures from the probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recarena.agents.profile import ProfileConfig, build_profiles
from recarena.agents.tuning.examples import ExampleConfig, system_message
from recarena.agents.tuning.validation import HeldOut, auc, bootstrap_auc
from recarena.simulator.data.splits import leave_one_out


@pytest.fixture(scope="module")
def split(small_synthetic):
    return leave_one_out(small_synthetic)


def test_held_out_questions_ask_about_each_users_held_out_item_with_a_training_profile(split):
    train = split.train_dataset()
    held = HeldOut.build(train, split.valid, ExampleConfig(users=6, targets=1, negatives=3))
    profiles = build_profiles(train, ProfileConfig())
    valid_item = dict(zip(split.valid["user"], split.valid["item"]))
    had = split.train.groupby("user")["item"].apply(set).to_dict()
    assert held.describe() == {"users": 6, "watch_questions": 6 * 4, "positives": 6, "rate_questions": 6}
    for example in held.examples:
        assert example.messages[0] == system_message(profiles[example.user].describe())
        if example.answer == "No":
            assert example.item not in had[example.user] and example.item != valid_item[example.user]
        else:  # the Yes watch question and the rate question are about the held-out item, with its real rating
            assert example.item == valid_item[example.user]
    real = split.valid.set_index("user")["rating"]
    assert all(e.answer == str(int(np.rint(real[e.user]))) for e in held.rate)


def test_auc_is_the_share_of_positive_negative_pairs_ranked_right_ties_counting_half():
    rng = np.random.default_rng(3)
    scores, labels = rng.integers(0, 4, 40).astype(float), rng.random(40) < 0.3
    pairs = [(p, n) for p, n in itertools.product(scores[labels], scores[~labels])]
    assert auc(scores, labels) == pytest.approx(np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs]))
    assert np.isnan(auc(scores, np.zeros(40, dtype=bool)))


def test_bootstrap_intervals_resample_users_and_pair_two_scorers_of_the_same_questions():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 5)
    labels = np.tile([True, False, False, False, False], 40)
    informed, noise = labels + rng.normal(0, 0.8, 200), rng.normal(0, 1, 200)
    low, high = bootstrap_auc(informed, labels, users, seed=1)
    assert low < auc(informed, labels) < high and low > 0.6
    assert bootstrap_auc(informed, labels, users, seed=1, minus=informed) == (0.0, 0.0)  # a scorer against itself
    low, high = bootstrap_auc(informed, labels, users, seed=1, minus=noise)
    assert 0 < low < auc(informed, labels) - auc(noise, labels) < high


def test_figures_come_from_the_probabilities_and_baselines_from_the_training_part(split):
    held = HeldOut.build(split.train_dataset(), split.valid, ExampleConfig(users=8, targets=1, negatives=2))
    perfect = [np.array([1.0, 0.0]) if e.answer == "Yes" else np.array([0.0, 1.0]) if e.question == "watch"
               else np.eye(5)[e.label] for e in held.examples]  # fmt: skip
    figures = held.measure_probabilities(perfect)
    assert figures["watch_auc"] == 1.0 and figures["rating_rmse"] == 0.0 and figures["watch_log_loss"] < 1e-9
    backwards = [p[::-1] if e.question == "watch" else np.full(5, 0.2) for p, e in zip(perfect, held.examples)]
    figures = held.measure_probabilities(backwards)
    assert figures["watch_auc"] == 0.0 and figures["rating_log_loss"] == pytest.approx(np.log(5))
    counts = np.bincount(split.train["item"], minlength=split.dataset.n_items)
    assert np.array_equal(held.popularity, counts)
    assert 0 <= held.baselines()["popularity_watch_auc"] <= 1 and held.baselines()["item_mean_rating_rmse"] > 0
