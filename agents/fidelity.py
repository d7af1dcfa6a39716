"""Fidelity: do simulated users behave like the real users they stand in for?

Two checks against held-out real behaviour (the test part of a `Split`; the
users must have been built from its training part only):

* **Taste discrimination** (as in Agent4Rec): for each held-out user, the items
  they rated >= `liked_rating` in the held-out part are mixed with items they never
  interacted with at all, at 1:1, 1:3 and 1:9. The simulated user decides to watch
  or not (drawn from its `watch_probabilities`, seeded); we report accuracy,
  precision, recall, F1 and the threshold-free AUC of its probabilities.
* **Rating alignment**: for each held-out rating, the simulated user's expected
  rating (RMSE, MAE) and a drawn rating (the Wasserstein-1 distance between the
  simulated and the real rating distributions).

Baselines measured in the same run, on the same pages: a random user that says
yes as often as the simulated one, a popularity user that says yes to the same
number of items on each page (the most popular in training), and the
popularity-threshold user (yes when an item's training popularity is above a
threshold tuned for F1 on validation pages; the bar published LLM simulators have
failed to clear); for ratings, the global and per-item mean ratings of training.
F1 of the simulated user comes with a 95% bootstrap interval over users. With
validation data, the simulated user is also scored deciding by a threshold on its
own probabilities tuned on validation (`simulated_tuned_threshold`): the same
tuning freedom the popularity-threshold user has, so the two compare fairly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from recarena.simulator.data.splits import Split

from .contract import SimulatedUser


@dataclass(frozen=True)
class FidelityConfig:
    """What the fidelity checks sample."""

    ratios: tuple[int, ...] = (1, 2, 3, 9)
    """Negatives per positive item on the discrimination pages."""
    positives: Literal["liked", "interacted"] = "liked"
    """Which held-out items are positives: rated >= `liked_rating`, or any interaction (Agent4Rec's protocol)."""
    liked_rating: float = 4.0
    """Held-out ratings at or above this make an item liked."""
    max_users: int | None = 200
    """Held-out users checked (sampled under `seed`); None for all."""
    max_positives: int = 10
    """Liked items per user on a page, at most."""
    max_ratings: int = 20
    """Held-out ratings per user used for rating alignment, at most."""
    bootstrap: int = 1000
    """Resamples of users for the 95% interval of F1."""
    tuned_user: bool = True
    """Also report the simulated user deciding by a threshold on its own probabilities tuned on
    validation, the same freedom the popularity-threshold user gets (costs one validation page per user)."""
    seed: int = 0
    """Seed for the user sample, the negatives and the decisions."""
    progress: bool = True
    """Show a progress bar."""


def _classification(truth: np.ndarray, said_yes: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(truth & said_yes))
    precision = tp / max(1.0, float(said_yes.sum()))
    recall = tp / max(1.0, float(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(truth == said_yes)), "precision": precision, "recall": recall, "f1": f1}


def _auc(truth: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Average ranks over ties, so equal scores count one half.
    for value in np.unique(scores):
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = truth.sum(), (~truth).sum()
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / max(1, n_pos * n_neg))


def _wasserstein_levels(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two samples of ratings on the 1..5 scale."""
    levels = np.arange(1, 6)
    cdf_a = np.array([(a <= k).mean() for k in levels])
    cdf_b = np.array([(b <= k).mean() for k in levels])
    return float(np.abs(cdf_a - cdf_b)[:-1].sum())


def _users_with_positives(part, config: FidelityConfig) -> dict[int, np.ndarray]:
    positive = part if config.positives == "interacted" else part[part["rating"] >= config.liked_rating]
    return positive.groupby("user")["item"].apply(lambda s: s.to_numpy()).to_dict()


def items_by_user(split: Split) -> dict[int, set[int]]:
    """Every item each user ever had, in any part: what a negative must not be."""
    return split.dataset.interactions.groupby("user")["item"].apply(lambda s: set(s.tolist())).to_dict()


def tune_threshold(
    split: Split,
    config: FidelityConfig,
    score: Callable[[int, np.ndarray], np.ndarray],
    everything: dict[int, set[int]],
    users: np.ndarray | None = None,
) -> float | None:
    """The threshold on `score(user, items)` with the best F1 on validation pages at 1:1; None without validation data.

    `everything` is `items_by_user(split)`, computed once by the caller."""
    rng = np.random.default_rng(config.seed + 1)
    data = split.dataset
    by_user = _users_with_positives(split.valid, config)
    if users is not None:
        by_user = {u: by_user[u] for u in users.tolist() if u in by_user}
    if not by_user:
        return None
    truth, scores = [], []
    for user, positives in by_user.items():
        positives = positives[: config.max_positives]
        negatives = _unseen(rng, data.n_items, everything.get(user, set()), len(positives))
        truth.append(np.arange(len(positives) + len(negatives)) < len(positives))
        scores.append(np.asarray(score(user, np.concatenate([positives, negatives])), dtype=float))
    truth, scores = np.concatenate(truth), np.concatenate(scores)
    candidates = np.unique(scores)
    f1 = [_classification(truth, scores > t)["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1))])


def _bootstrap_f1(truths: list[np.ndarray], answers: list[np.ndarray], rng: np.random.Generator, n: int) -> tuple[float, float]:
    """95% interval of the pooled F1 over users resampled with replacement."""
    tp = np.array([float(np.sum(t & a)) for t, a in zip(truths, answers)])
    said = np.array([float(a.sum()) for a in answers])
    real = np.array([float(t.sum()) for t in truths])
    picks = rng.integers(0, len(tp), (n, len(tp)))
    tp_b, said_b, real_b = tp[picks].sum(1), said[picks].sum(1), real[picks].sum(1)
    precision, recall = tp_b / np.maximum(said_b, 1), tp_b / np.maximum(real_b, 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    low, high = np.quantile(f1, [0.025, 0.975])
    return float(low), float(high)


def fidelity_report(make_user: Callable[[int], SimulatedUser], split: Split, config: FidelityConfig = FidelityConfig()) -> dict:
    """Run both checks for the users `make_user(user_id)` builds; return figures and baselines."""
    rng = np.random.default_rng(config.seed)
    data = split.dataset
    test = split.test
    positives_by_user = _users_with_positives(test, config)
    candidates = np.array(sorted(positives_by_user), dtype=np.int64)
    if config.max_users is not None and len(candidates) > config.max_users:
        candidates = np.sort(rng.choice(candidates, config.max_users, replace=False))
    everything = items_by_user(split)
    popularity = np.bincount(split.train["item"].to_numpy(), minlength=data.n_items).astype(float)
    threshold = tune_threshold(split, config, lambda user, items: popularity[items], everything)
    if threshold is None:
        threshold = float(np.median(popularity))
    # The same freedom for the simulated user: a yes/no threshold on its own probabilities, tuned on validation.
    users_made: dict[int, SimulatedUser] = {}

    def made(user: int) -> SimulatedUser:
        if user not in users_made:
            users_made[user] = make_user(user)
        return users_made[user]

    user_threshold = tune_threshold(split, config, lambda u, items: made(u).watch_probabilities(items.tolist()), everything, candidates) if config.tuned_user else None
    train_ratings = split.train["rating"].to_numpy()
    item_sum = np.bincount(split.train["item"].to_numpy(), split.train["rating"].to_numpy(), minlength=data.n_items)
    item_mean = np.where(popularity > 0, item_sum / np.maximum(popularity, 1), train_ratings.mean())

    fields = ("truth", "prob", "yes", "pop_yes", "pop_score", "random_yes", "threshold_yes", "tuned_yes")
    pages: dict[int, dict[str, list]] = {m: {f: [] for f in fields} for m in config.ratios}
    real_ratings, expected, drawn, global_pred, item_pred = [], [], [], [], []
    rated_by_user = test.groupby("user")[["item", "rating"]].apply(lambda f: (f["item"].to_numpy(), f["rating"].to_numpy())).to_dict()
    for user_id in tqdm(candidates.tolist(), desc="fidelity", disable=not config.progress):
        user = made(int(user_id))
        positives = positives_by_user[user_id][: config.max_positives]
        seen = everything.get(user_id, set())
        for m in config.ratios:
            negatives = _unseen(rng, data.n_items, seen, m * len(positives))
            items = np.concatenate([positives, negatives])
            probability = np.asarray(user.watch_probabilities(items.tolist()), dtype=float)
            said_yes = rng.random(len(items)) < probability
            k = int(said_yes.sum())
            pop_yes = np.zeros(len(items), bool)
            pop_yes[np.argsort(-popularity[items], kind="stable")[:k]] = True
            record = pages[m]
            record["truth"].append(np.arange(len(items)) < len(positives))
            record["prob"].append(probability)
            record["yes"].append(said_yes)
            record["pop_yes"].append(pop_yes)
            record["pop_score"].append(popularity[items])
            record["random_yes"].append(rng.random(len(items)) < (k / len(items)))
            record["threshold_yes"].append(popularity[items] > threshold)
            record["tuned_yes"].append(probability > (user_threshold if user_threshold is not None else np.inf))
        if user_id in rated_by_user and data.has_ratings:
            items, ratings = rated_by_user[user_id]
            items, ratings = items[: config.max_ratings], ratings[: config.max_ratings]
            levels = np.asarray(user.rating_probabilities(items.tolist()), dtype=float)
            expected.append(levels @ np.arange(1, 6))
            drawn.append(1 + (rng.random((len(items), 1)) > np.cumsum(levels, 1)[:, :-1]).sum(1))
            real_ratings.append(ratings)
            global_pred.append(np.full(len(items), train_ratings.mean()))
            item_pred.append(item_mean[items])

    discrimination = {}
    for m, record in pages.items():
        truth = np.concatenate(record["truth"])
        yes = np.concatenate(record["yes"])
        low, high = _bootstrap_f1(record["truth"], record["yes"], rng, config.bootstrap)
        discrimination[f"1:{m}"] = {
            "simulated": {
                **_classification(truth, yes), "f1_ci95": [low, high],
                "auc": _auc(truth, np.concatenate(record["prob"])), "yes_rate": float(yes.mean()),
            },
            "random_same_rate": _classification(truth, np.concatenate(record["random_yes"])),
            "popularity_same_count": {**_classification(truth, np.concatenate(record["pop_yes"])), "auc": _auc(truth, np.concatenate(record["pop_score"]))},
            "popularity_threshold": {**_classification(truth, np.concatenate(record["threshold_yes"])), "threshold": threshold},
            **({"simulated_tuned_threshold": {**_classification(truth, np.concatenate(record["tuned_yes"])), "threshold": user_threshold}}
               if user_threshold is not None else {}),
            "items": int(len(truth)),
        }  # fmt: skip
    report = {"users": int(len(candidates)), "positives": config.positives, "discrimination": discrimination}
    if real_ratings:
        real = np.concatenate(real_ratings)
        errors = {
            name: {"rmse": float(np.sqrt(np.mean((np.concatenate(pred) - real) ** 2))), "mae": float(np.mean(np.abs(np.concatenate(pred) - real)))}
            for name, pred in (("simulated", expected), ("global_mean", global_pred), ("item_mean", item_pred))
        }
        report["rating"] = {
            **errors,
            "wasserstein_simulated_vs_real": _wasserstein_levels(np.concatenate(drawn), real),
            "wasserstein_train_vs_real": _wasserstein_levels(np.clip(np.round(train_ratings), 1, 5), real),
            "simulated_histogram": np.bincount(np.concatenate(drawn), minlength=6)[1:].tolist(),
            "real_histogram": np.bincount(np.clip(np.round(real), 1, 5).astype(int), minlength=6)[1:].tolist(),
            "ratings": int(len(real)),
        }
    return report


def _unseen(rng: np.random.Generator, n_items: int, seen: set[int], n: int) -> np.ndarray:
    pool = np.setdiff1d(np.arange(n_items), np.fromiter(seen, dtype=np.int64, count=len(seen)), assume_unique=False)
    return rng.choice(pool, size=min(n, len(pool)), replace=False)
