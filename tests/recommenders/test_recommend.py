"""recommend(), update() and save/load behave as the contract says, for every registered model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recarena.recommenders import Recommender, RecommenderError, build_recommender, history_scorer, recommender_names
from recarena.recommenders.base import user_histories

from .conftest import FAST_PARAMS


@pytest.fixture(scope="module")
def fitted(world_split):
    """Every registered model, fitted once with a few epochs."""
    out = {}
    for name in recommender_names():
        params = {**FAST_PARAMS[name], "epochs": min(FAST_PARAMS[name].get("epochs", 1), 5)} if "epochs" in FAST_PARAMS[name] else FAST_PARAMS[name]
        out[name] = build_recommender(name, params).fit(world_split.train_dataset(), valid=world_split.valid)
    return out


@pytest.mark.parametrize("name", recommender_names())
def test_exclude_never_returns_an_excluded_item(name, fitted):
    model = fitted[name]
    users = np.arange(40)
    rng = np.random.default_rng(0)
    seen_page = model.recommend(users, 20)
    for row, user in enumerate(users):
        assert not np.isin(seen_page.items[row], model.histories[user]).any()
    per_user = [rng.choice(model.n_items, 150, replace=False) for _ in users]
    page = model.recommend(users, 20, exclude=per_user)
    for row in range(len(users)):
        real = page.items[row][page.items[row] >= 0]
        assert not np.isin(real, per_user[row]).any()
        assert len(real) == 20  # 50 items are left, so a full page
    shared = rng.choice(model.n_items, 195, replace=False)
    page = model.recommend(users, 10, exclude=shared)
    assert not np.isin(page.items, shared).any()
    assert ((page.items >= 0).sum(1) == 5).all() and (page.items[:, 5:] == -1).all()


@pytest.mark.parametrize("name", recommender_names())
def test_candidates_restrict_the_output(name, fitted):
    model = fitted[name]
    users = np.arange(25)
    rng = np.random.default_rng(1)
    per_user = [rng.choice(model.n_items, 12, replace=False) for _ in users]
    page = model.recommend(users, 8, exclude=None, candidates=per_user)
    scores = model.score(users)
    for row in range(len(users)):
        assert np.isin(page.items[row], per_user[row]).all()
        best = per_user[row][np.argsort(-scores[row, per_user[row]].numpy(), kind="stable")[:8]]
        assert np.allclose(np.sort(scores[row, page.items[row]].numpy()), np.sort(scores[row, best].numpy()), atol=1e-5)
    both = model.recommend(users, 8, exclude=[c[:4] for c in per_user], candidates=per_user)
    for row in range(len(users)):
        assert np.isin(both.items[row], per_user[row][4:]).all()


@pytest.mark.parametrize("name", recommender_names())
def test_save_load_round_trips_to_identical_scores(name, fitted, tmp_path, world_split):
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = Recommender.load(tmp_path / name)
    assert type(loaded) is type(model) and loaded.params == model.params
    users = np.arange(model.n_users)
    assert torch.equal(loaded.score(users), model.score(users))
    scorer, loaded_scorer = history_scorer(model, world_split, "test"), history_scorer(loaded, world_split, "test")
    assert torch.equal(loaded_scorer(users[:50]), scorer(users[:50]))
    assert np.array_equal(loaded.recommend(users[:50], 10).items, model.recommend(users[:50], 10).items)
    assert type(model).load(tmp_path / name).params == model.params


def test_load_of_a_missing_directory_is_one_line(tmp_path):
    with pytest.raises(RecommenderError, match="no saved recommender"):
        Recommender.load(tmp_path / "nothing")


def test_sasrec_conditions_on_the_history_it_is_given(fitted, world_split):
    model = fitted["sasrec"]
    users = np.arange(30)
    train_scores = model.score(users)
    test_scores = history_scorer(model, world_split, "test")(users)
    assert not torch.allclose(train_scores, test_scores)
    # On the test part the input ends with the validation item: same as passing that history by hand.
    known = user_histories(world_split.known_before("test"), model.n_users)
    valid_last = dict(zip(world_split.valid["user"], world_split.valid["item"]))
    assert all(known[u][-1] == valid_last[u] for u in users if u in valid_last)
    assert torch.equal(test_scores, model.score(users, [known[u] for u in users]))
    # BPR learns its user vectors, so it ignores the history.
    bpr = fitted["bpr"]
    assert torch.equal(bpr.score(users), bpr.score(users, [known[u] for u in users]))


def test_update_is_incremental_for_popularity(world_split, world):
    model = build_recommender("pop").fit(world_split.train_dataset())
    assert model.update_mode == "incremental"
    before = model.score(np.array([0]))[0].clone()
    item = int(before.argmin())
    feedback = pd.DataFrame({"user": [0, 1, 2], "item": [item] * 3, "rating": [5.0] * 3, "timestamp": [2_000_000_000] * 3})
    model.update(feedback)
    after = model.score(np.array([0]))[0]
    assert after[item] == before[item] + 3 and torch.equal(torch.cat([after[:item], after[item + 1 :]]), torch.cat([before[:item], before[item + 1 :]]))
    assert item in model.histories[1] and item not in model.recommend(np.array([1]), model.n_items).items[0]


def test_update_continues_sasrec_from_its_state(fitted, world_split):
    model = build_recommender("sasrec", {**FAST_PARAMS["sasrec"], "epochs": 3}).fit(world_split.train_dataset())
    before = model.score(np.arange(10))
    model.update(world_split.valid)
    assert model.training_log["epochs_run"] == FAST_PARAMS["sasrec"]["update_epochs"]
    assert not torch.equal(before, model.score(np.arange(10)))
    assert all(model.histories[u][-1] == i for u, i in zip(world_split.valid["user"], world_split.valid["item"]))


def test_update_rejects_unknown_ids(fitted):
    with pytest.raises(RecommenderError, match="item id outside"):
        fitted["pop"].update(pd.DataFrame({"user": [0], "item": [10_000], "rating": [1.0], "timestamp": [0]}))


def test_sampled_softmax_trains_sasrec(world_split):
    params = {**FAST_PARAMS["sasrec"], "loss": "sampled_softmax", "negatives": 64, "epochs": 3}
    model = build_recommender("sasrec", params).fit(world_split.train_dataset(), valid=world_split.valid)
    losses = model.training_log["losses"]
    assert losses[-1] < losses[0] and not torch.isnan(model.score(np.arange(5))).any()
