"""faiss retrieval: the exact index agrees with brute force; IVF and HNSW report their recall against it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recarena.recommenders import ItemIndex, build_recommender, retrieval_recall

from .conftest import FAST_PARAMS


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    items = (centres[rng.integers(0, 20, 5000)] + 0.3 * rng.normal(size=(5000, 16))).astype(np.float32)
    queries = (centres[rng.integers(0, 20, 64)] + 0.3 * rng.normal(size=(64, 16))).astype(np.float32)
    return items, queries


def test_exact_index_matches_brute_force(clustered):
    items, queries = clustered
    found = ItemIndex(items, "exact").search(queries, 10)
    brute = torch.topk(torch.from_numpy(queries @ items.T), 10, dim=1)
    assert np.array_equal(found.items, brute.indices.numpy())
    assert np.allclose(found.scores, brute.values.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall(kind, clustered):
    items, queries = clustered
    index = ItemIndex(items, kind)
    assert retrieval_recall(items, queries, 10, index) >= 0.9
    assert retrieval_recall(items, queries, 10, ItemIndex(items, "exact")) == 1.0


def test_search_drops_banned_items_and_still_returns_k(clustered):
    items, queries = clustered
    index = ItemIndex(items, "exact")
    first = index.search(queries[:2], 10).items
    banned = [first[0, :5], first[1, ::2]]
    page = index.search(queries[:2], 10, banned)
    assert not np.isin(page.items[0], banned[0]).any() and not np.isin(page.items[1], banned[1]).any()
    assert (page.items >= 0).all()
    assert np.array_equal(page.items[0, :5], first[0, 5:])


def test_index_pads_when_the_catalog_is_small():
    page = ItemIndex(np.eye(3, dtype=np.float32), "exact").search(np.ones((1, 3), np.float32), 5)
    assert page.items.shape == (1, 5) and (page.items[0, 3:] == -1).all() and np.isinf(page.scores[0, 3:]).all()


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_embedding_model_recommends_through_its_index(kind, world_split):
    params = {**FAST_PARAMS["bpr"], "epochs": 5, "index": kind, "ivf_lists": 8, "ivf_probe": 8}
    model = build_recommender("bpr", params).fit(world_split.train_dataset())
    assert model.index.kind == kind
    users = np.arange(30)
    page = model.recommend(users, 10)
    exact = model.recommend(users, 10, candidates=np.arange(model.n_items))  # candidates: the scoring path
    overlap = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(page.items, exact.items)])
    assert overlap == 1.0 if kind == "exact" else overlap >= 0.8
    recall = model.index_recall(users, 10)
    assert recall == 1.0 if kind == "exact" else 0.8 <= recall <= 1.0
