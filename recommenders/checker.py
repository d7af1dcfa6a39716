"""`check_recommender`: the conformance test of the `Recommender` contract (base.py), shipped with the package.

Anyone who writes a recommender runs ``check_recommender(MyModel(...), dataset)``;
it fits the model on a leave-one-out split of `dataset` (early stopping on its
validation part) and checks each promise of the contract, raising an
AssertionError that names the broken promise. Use a small dataset and a few
epochs: it fits the model twice (once more for `update`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import leave_one_out

from .base import Recommendations, Recommender
from .errors import RecommenderError
from .offline import history_scorer


def _fail(model: Recommender, promise: str) -> AssertionError:
    return AssertionError(f"{type(model).__name__} ({getattr(model, 'name', '?')}) breaks the contract: {promise}")


def check_recommender(model: Recommender, dataset: Dataset, k: int = 10, n_users: int = 16, seed: int = 0) -> None:
    """Check `model` (unfitted) against the contract on `dataset`; AssertionError on the first breach."""
    if not isinstance(model, Recommender):
        raise _fail(model, "is not a recarena.recommenders.Recommender")
    if model.update_mode not in ("full", "incremental"):
        raise _fail(model, f"update_mode must be 'full' or 'incremental', got {model.update_mode!r}")
    split = leave_one_out(dataset)
    train = split.train_dataset()
    if model.fit(train, valid=split.valid) is not model:
        raise _fail(model, "fit() must return self")
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(dataset.n_users, size=min(n_users, dataset.n_users), replace=False))
    _check_score(model, users, dataset.n_items)
    _check_known_items(model, train, users)
    _check_recommend(model, users, k, rng)
    _check_history(model, split, users)
    _check_save_load(model, users, k)
    _check_update(model, split, users, k)
    _check_errors(model, dataset)


def _check_score(model: Recommender, users: np.ndarray, n_items: int) -> None:
    scores = model.score(users)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(users), n_items):
        raise _fail(model, f"score() must return a tensor of shape ({len(users)}, {n_items})")
    if torch.isnan(scores).any():
        raise _fail(model, "score() returned NaN")
    if not torch.equal(scores, model.score(users)):
        raise _fail(model, "score() must be deterministic")
    if tuple(model.score(np.array([], np.int64)).shape) != (0, n_items):
        raise _fail(model, "score() of no users must have shape (0, n_items)")
    single = model.score(users[:1])
    if not torch.allclose(single, scores[:1], rtol=1e-4, atol=1e-5):
        raise _fail(model, "a user's scores must not depend on the other users in the batch")


def _check_page(model: Recommender, page: Recommendations, n_users: int, k: int, what: str) -> None:
    if not isinstance(page, Recommendations):
        raise _fail(model, f"recommend() must return Recommendations ({what})")
    if page.items.shape != (n_users, k) or page.scores.shape != (n_users, k):
        raise _fail(model, f"recommend() must return [{n_users}, {k}] ids and scores ({what}), got {page.items.shape}")
    for row, values in zip(page.items, page.scores):
        real = row[row >= 0]
        if len(np.unique(real)) != len(real):
            raise _fail(model, f"recommend() returned an item twice in one list ({what})")
        if (row[: len(real)] < 0).any():
            raise _fail(model, f"padding (-1) must come after real items ({what})")
        finite = values[: len(real)]
        if len(finite) > 1 and (np.diff(finite) > 1e-5 * (1 + np.abs(finite[:-1]))).any():
            raise _fail(model, f"recommend() scores must be non-increasing ({what})")


def _check_known_items(model: Recommender, train: Dataset, users: np.ndarray) -> None:
    known = model.known_items(users)
    if len(known) != len(users):
        raise _fail(model, f"known_items() must give one array per user, got {len(known)} for {len(users)} users")
    had = train.interactions
    for row, user in enumerate(users.tolist()):
        if not set(had.loc[had["user"] == user, "item"].tolist()) <= set(np.asarray(known[row]).tolist()):
            raise _fail(model, "known_items() must hold every item the user had in the data the model was fitted on")


def _check_recommend(model: Recommender, users: np.ndarray, k: int, rng: np.random.Generator) -> None:
    scores = model.score(users)
    page = model.recommend(users, k)
    _check_page(model, page, len(users), k, "default")
    for row, user in enumerate(users.tolist()):
        seen = set(model.histories[user].tolist())
        got = page.items[row][page.items[row] >= 0]
        if seen & set(got.tolist()):
            raise _fail(model, "recommend() with exclude='seen' returned an item from the user's history")
        if len(got) < min(k, model.n_items - len(seen)):
            raise _fail(model, "recommend() returned fewer than k items although more were allowed")
        if not np.allclose(page.scores[row][: len(got)], scores[row, got].numpy(), rtol=1e-4, atol=1e-4):
            raise _fail(model, "recommend() scores must equal score() for the returned items")
    banned = rng.choice(model.n_items, size=min(model.n_items - 1, 3 * k), replace=False)
    page = model.recommend(users, k, exclude=banned)
    _check_page(model, page, len(users), k, "exclude")
    if np.isin(page.items, banned).any():
        raise _fail(model, "recommend() returned an excluded item")
    per_user = [rng.choice(model.n_items, size=k, replace=False) for _ in users]
    if np.isin(model.recommend(users, k, exclude=per_user).items, np.concatenate(per_user)).any():
        wrong = any(np.isin(r, e).any() for r, e in zip(model.recommend(users, k, exclude=per_user).items, per_user))
        if wrong:
            raise _fail(model, "recommend() returned an item excluded for that user")
    candidates = rng.choice(model.n_items, size=min(model.n_items, 2 * k), replace=False)
    page = model.recommend(users, k, exclude=None, candidates=candidates)
    _check_page(model, page, len(users), k, "candidates")
    if not np.isin(page.items[page.items >= 0], candidates).all():
        raise _fail(model, "recommend() returned an item outside the candidates")
    few = candidates[: max(1, k // 2)]
    page = model.recommend(users, k, exclude=None, candidates=few)
    if (page.items[:, len(few) :] != -1).any() or (page.items[:, : len(few)] < 0).any():
        raise _fail(model, "with fewer candidates than k, recommend() must return them all, then pad with -1")
    best = model.recommend(users, 1, exclude=None, candidates=candidates)
    full = scores[:, torch.as_tensor(candidates)].max(1).values.numpy()
    if not np.allclose(best.scores[:, 0], full, rtol=1e-4, atol=1e-4):
        raise _fail(model, "recommend(k=1, candidates) must return the best-scored candidate")


def _check_history(model: Recommender, split, users: np.ndarray) -> None:
    scorer = history_scorer(model, split, "test")
    scores = scorer(users)
    if tuple(scores.shape) != (len(users), model.n_items) or torch.isnan(scores).any():
        raise _fail(model, "score(users, history) must return finite [users, n_items] scores")


def _check_save_load(model: Recommender, users: np.ndarray, k: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        model.save(Path(directory) / "model")
        loaded = Recommender.load(Path(directory) / "model")
        if type(loaded) is not type(model) or loaded.params != model.params:
            raise _fail(model, "load() must rebuild the same class with the same parameters")
        if not torch.equal(loaded.score(users), model.score(users)):
            raise _fail(model, "save()/load() must round-trip to identical scores")
        if not np.array_equal(loaded.recommend(users, k).items, model.recommend(users, k).items):
            raise _fail(model, "save()/load() must round-trip to identical recommendations")


def _check_update(model: Recommender, split, users: np.ndarray, k: int) -> None:
    if model.update(split.valid) is not model:
        raise _fail(model, "update() must return self")
    page = model.recommend(users, k)
    _check_page(model, page, len(users), k, "after update")
    valid_items = dict(zip(split.valid["user"].tolist(), split.valid["item"].tolist()))
    for row, user in enumerate(users.tolist()):
        if user in valid_items and valid_items[user] in page.items[row]:
            raise _fail(model, "after update(), an item the user just had must count as seen")
        if user in valid_items and valid_items[user] not in model.known_items([user])[0]:
            raise _fail(model, "after update(), known_items() must hold the items the user just had")


def _check_errors(model: Recommender, dataset: Dataset) -> None:
    for call, what in (
        (lambda: model.score(np.array([dataset.n_users])), "an out-of-range user id"),
        (lambda: model.recommend(np.array([0]), 0), "k = 0"),
        (lambda: model.recommend(np.array([0]), 3, candidates=np.array([dataset.n_items])), "an out-of-range candidate"),
    ):
        try:
            call()
        except RecommenderError:
            continue
        except Exception as error:  # noqa: BLE001 - the contract asks for a RecommenderError
            raise _fail(model, f"{what} must raise RecommenderError, got {type(error).__name__}") from None
        raise _fail(model, f"{what} must raise RecommenderError")
