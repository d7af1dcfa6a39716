"""Each model learns: on synthetic worlds with known structure it clearly beats Random, and the
personalised ones beat MostPopular where taste, not popularity, drives the choices."""

from __future__ import annotations

import pytest

from recarena.recommenders import build_recommender, evaluate_recommender, recommender_names
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

from .conftest import FAST_PARAMS

PERSONALISED = ["itemknn", "bpr", "lightgcn", "sasrec"]


@pytest.fixture(scope="module")
def taste_split():
    """Popularity nearly flat, sharp tastes: only a model of the user can do well."""
    config = SyntheticConfig(n_users=600, n_items=200, mean_interactions=25, popularity_sigma=0.3, temperature=0.25, seed=3)
    return leave_one_out(generate_synthetic(config))


def _test_ndcg(name, split):
    model = build_recommender(name, FAST_PARAMS[name]).fit(split.train_dataset(), valid=split.valid)
    return evaluate_recommender(model, split, "test").metrics["ndcg@10"], model


@pytest.fixture(scope="module")
def random_ndcg(world_split):
    return _test_ndcg("random", world_split)[0]


@pytest.mark.parametrize("name", [n for n in recommender_names() if n != "random"])
def test_model_beats_random_by_a_clear_margin(name, world_split, random_ndcg):
    ndcg, model = _test_ndcg(name, world_split)
    assert ndcg > 2.0 * random_ndcg and ndcg > random_ndcg + 0.04, f"{name}: {ndcg:.4f} vs random {random_ndcg:.4f}"


@pytest.mark.parametrize("name", PERSONALISED)
def test_personalised_model_beats_popularity_where_taste_rules(name, taste_split):
    pop, _ = _test_ndcg("pop", taste_split)
    ndcg, model = _test_ndcg(name, taste_split)
    assert ndcg > pop + 0.01, f"{name}: {ndcg:.4f} vs pop {pop:.4f}"


@pytest.mark.parametrize("name", ["bpr", "lightgcn", "sasrec"])
def test_training_stops_early_and_keeps_the_best_epoch(name, world_split):
    params = {**FAST_PARAMS[name], "epochs": 60, "patience": 2}
    model = build_recommender(name, params).fit(world_split.train_dataset(), valid=world_split.valid)
    log = model.training_log
    assert log["stopped_early"] and log["epochs_run"] < 60
    assert log["best_score"] == max(log["validation"].values())
    assert log["epochs_run"] - log["best_epoch"] == 2
    assert len(log["epoch_seconds"]) == log["epochs_run"] and log["mean_epoch_seconds"] > 0
    # The model kept is the best epoch's: its validation NDCG@10 is the logged best.
    assert evaluate_recommender(model, world_split, "valid").metrics["ndcg@10"] == pytest.approx(log["best_score"], abs=1e-6)
