"""Every registered model passes the shipped conformance check; the checker catches broken models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recarena.recommenders import MostPopular, build_recommender, check_recommender, recommender_names

from .conftest import FAST_PARAMS


def test_fast_params_cover_the_registry():
    assert set(FAST_PARAMS) == set(recommender_names())


@pytest.mark.parametrize("name", recommender_names())
def test_registry_model_passes_check_recommender(name, tiny_world):
    check_recommender(build_recommender(name, FAST_PARAMS[name]), tiny_world)


class LeaksSeenItems(MostPopular):
    """Breaks the contract: recommends items the user has already seen."""

    name = "pop"

    def recommend(self, users, k, exclude="seen", candidates=None, history=None):
        return super().recommend(users, k, exclude=None, candidates=candidates, history=history)


class UnstableScores(MostPopular):
    name = "pop"

    def _score(self, users, history):
        return super()._score(users, history) + torch.rand(len(users), self.n_items)


class ForgetsWhatUsersHad(MostPopular):
    name = "pop"

    def known_items(self, users):
        return [np.empty(0, np.int64) for _ in users]


@pytest.mark.parametrize(("broken", "promise"), [(LeaksSeenItems, "history"), (UnstableScores, "deterministic"),
                                                 (ForgetsWhatUsersHad, "known_items")])  # fmt: skip
def test_checker_catches_a_broken_model(broken, promise, tiny_world):
    with pytest.raises(AssertionError, match=promise):
        check_recommender(broken(), tiny_world)


def test_checker_rejects_a_non_recommender(tiny_world):
    with pytest.raises(AssertionError, match="is not a recarena.recommenders.Recommender"):
        check_recommender(object(), tiny_world)


def test_scores_are_deterministic_under_a_seed(world_split):
    for name in ("bpr", "sasrec"):
        params = {**FAST_PARAMS[name], "epochs": 3}
        first = build_recommender(name, params).fit(world_split.train_dataset()).score(np.arange(20))
        second = build_recommender(name, params).fit(world_split.train_dataset()).score(np.arange(20))
        assert torch.equal(first, second), name
        other = build_recommender(name, {**params, "seed": 1}).fit(world_split.train_dataset()).score(np.arange(20))
        assert not torch.equal(first, other), name
