"""The user-side parts of the fidelity checks: pages, thresholds, rating predictors, behaviour shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recarena.agents.fidelity import FidelityConfig, best_threshold, build_reference, fidelity_report, make_pages, sample_users
from recarena.agents.fidelity_rating import fit_biased_mf, item_means, rating_alignment, rmse, wasserstein_levels
from recarena.agents.fidelity_shape import js_divergence, real_session_lengths
from recarena.simulator.data.splits import random_holdout


@pytest.fixture(scope="module")
def split(small_synthetic):
    return random_holdout(small_synthetic, valid_fraction=0.1, test_fraction=0.1, seed=0)


def test_ratio_pages_are_prefixes_of_one_page_of_never_touched_items(split):
    config = FidelityConfig(ratios=(1, 2, 9), positives="interacted", max_positives=3)
    everything = split.dataset.interactions.groupby("user")["item"].apply(set).to_dict()
    pages = make_pages(split, split.test, 0, None, config, everything)
    held_out = split.test.groupby("user")["item"].apply(list).to_dict()
    for user, page in list(pages.items())[:50]:
        positives = page.items[: page.n_positives]
        assert positives.tolist() == held_out[user][:3]
        negatives = page.items[page.n_positives :]
        assert len(negatives) == 9 * page.n_positives and not set(negatives.tolist()) & everything[user]
        for ratio in (1, 2, 9):
            index, n_pos = page.view("interacted", ratio)
            assert n_pos == page.n_positives and len(index) == (1 + ratio) * n_pos
            liked, n_liked = page.view("liked", ratio)
            assert n_liked == int(page.liked.sum()) and len(liked) == (1 + ratio) * n_liked
    # Same seed, same pages: every user kind meets the same pages.
    again = make_pages(split, split.test, 0, None, config, everything)
    assert all(np.array_equal(pages[u].items, again[u].items) for u in pages)


def test_best_threshold_maximises_f1():
    truth = np.array([True, True, False, True, False, False])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    t = best_threshold(truth, scores)
    said = scores > t
    f1 = lambda yes: 2 * (truth & yes).sum() / (yes.sum() + truth.sum())  # noqa: E731
    assert f1(said) == max(f1(scores > c) for c in [-1.0, *scores])
    assert best_threshold(np.array([True, False]), np.array([0.5, 0.5])) == -np.inf  # all-yes beats all-no


def test_biased_mf_beats_the_item_mean_on_held_out_ratings(split):
    data = split.dataset
    model = fit_biased_mf(split.train, data.n_users, data.n_items, l2=10.0)
    item_mean, _ = item_means(split.train, data.n_items)
    test = split.test
    assert rmse(model.predict(test["user"], test["item"]), test["rating"]) < rmse(item_mean[test["item"]], test["rating"])


def test_rating_alignment_says_when_a_simulated_user_only_restates_the_item_mean():
    rng = np.random.default_rng(0)
    item_mean = rng.uniform(2, 5, 200)
    real = np.clip(np.round(item_mean + rng.normal(0, 1, 200)), 1, 5)
    echo, own = 0.5 + 0.9 * item_mean, rng.uniform(1, 5, 200)  # a rescaled item mean; a view of its own
    report = {name: rating_alignment(real, expected, np.round(expected), {"item_mean": item_mean}, real, rng)
              for name, expected in (("echo", echo), ("own", own))}  # fmt: skip
    assert report["echo"]["correlation_with"]["item_mean"] == pytest.approx(1.0)
    assert abs(report["own"]["correlation_with"]["item_mean"]) < 0.2
    constant = rating_alignment(real, np.full(200, 3.5), np.full(200, 4), {"item_mean": item_mean}, real, rng)
    assert constant["correlation_with"]["item_mean"] is None  # no spread, no correlation


def test_wasserstein_on_levels():
    assert wasserstein_levels(np.array([1, 2, 3]), np.array([1, 2, 3])) == 0.0
    assert wasserstein_levels(np.full(10, 4), np.full(10, 1)) == pytest.approx(3.0)


def test_reference_uses_the_training_part_and_validation_thresholds(split):
    config = FidelityConfig(ratios=(1, 9), positives="interacted")
    reference = build_reference(split, config)
    assert reference.variants == ("interacted", "liked")
    assert reference.popularity.sum() == len(split.train)
    # At 1:9 the popularity-threshold user must be pickier than at 1:1 to keep its F1.
    assert reference.popularity_thresholds[("interacted", 9)] >= reference.popularity_thresholds[("interacted", 1)]
    assert reference.threshold_source == "tuned on validation pages"


def test_a_user_that_knows_the_truth_wins_and_a_clueless_one_does_not(split):
    held_out = split.test.groupby("user")["item"].apply(set).to_dict()

    class Oracle:
        def __init__(self, user, sure):
            self.user, self.sure = user, sure

        def watch_probabilities(self, items):
            return np.array([0.99 if i in held_out.get(self.user, ()) else 0.01 for i in items]) if self.sure else np.full(len(items), 0.5)

        def rating_probabilities(self, items):
            return np.full((len(items), 5), 0.2)

    config = FidelityConfig(ratios=(1, 3), positives="interacted", max_users=60, bootstrap=200, progress=False)
    users = sample_users(split, config)
    oracle = fidelity_report(lambda u: Oracle(u, True), split, config, users=users)
    clueless = fidelity_report(lambda u: Oracle(u, False), split, config, users=users)
    for ratio in ("1:1", "1:3"):
        assert oracle["discrimination"][ratio]["simulated"]["f1"] > 0.9
        low, _ = oracle["discrimination"][ratio]["simulated"]["f1_minus_popularity_threshold_ci95"]
        assert low > 0
        assert clueless["discrimination"][ratio]["simulated"]["auc"] == pytest.approx(0.5)
        # Same pages for both: the baselines agree exactly.
        assert oracle["discrimination"][ratio]["popularity_threshold"] == clueless["discrimination"][ratio]["popularity_threshold"]
    assert oracle["rating"]["wasserstein"]["simulated"] > oracle["rating"]["wasserstein"]["training_histogram"]


def test_real_sessions_are_cut_at_gaps():
    frame = pd.DataFrame({"user": [0, 0, 0, 1, 1], "timestamp": [0, 60, 10_000, 5, 6]})
    lengths = real_session_lengths(frame, 3, gap_seconds=1800)
    assert lengths[0] == pytest.approx(1.5) and lengths[1] == 2.0 and np.isnan(lengths[2])


def test_js_divergence_bounds():
    assert js_divergence(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(0.0)
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
