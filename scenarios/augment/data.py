"""The data side of `recarena augment`: sparse training sets, synthetic interactions, per-user metrics.

Synthetic interactions come from three generators, all fed by the training part only:

* **simulated** (`simulate_interactions`): simulated users browse pages (from a recommender
  fitted on the training part without validation, or from the random recommender: a uniform
  candidate pool); each watched item with its rating becomes an interaction;
* **popularity** and **random** (`naive_interactions`): for the same users, as many items each
  as the simulated users gave them (the same volume, user by user), drawn without
  replacement from the items the user did not have, with probability proportional to the
  item's training count, or uniformly; ratings drawn from the training ratings;
* **shown** (optional): as many items per user again, the first ones the pages showed that
  user, watched or not: the page source without the users' choices.

Timestamps (`place_after_training`): a user's synthetic rows all get the user's last training
timestamp and come after the real training rows in row order. Every reader and model here
sorts by time stably, so a sequential model reads them right after the real history and
before the validation item, which is at or after that time in a leave-one-out split. No
held-out timestamp or item is read.

Every frame has the columns of ``Dataset.interactions`` plus `PROVENANCE` (``real``,
``simulated``, ``popularity``, ``random``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from recarena.recommenders.evaluation import evaluate
from recarena.recommenders.offline import history_scorer
from recarena.simulator.arm_sessions import Twins, records_to_frames, simulate_arm
from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import Split
from recarena.simulator.data.streams import AUGMENT_SHOWN_RATINGS

PROVENANCE = "source"
REAL, SIMULATED, POPULARITY, RANDOM, SHOWN = "real", "simulated", "popularity", "random", "shown"
BASELINES = (POPULARITY, RANDOM, SHOWN)
COLUMNS = ["user", "item", "rating", "timestamp"]


def sparsify(train: pd.DataFrame, low: int, high: int, rng: np.random.Generator) -> pd.DataFrame:
    """Each user's first n training interactions in time, n drawn uniformly in [low, high] per user."""
    users = train["user"].to_numpy()
    order = np.lexsort((np.arange(len(train)), train["timestamp"].to_numpy(), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    rank = np.arange(len(train)) - starts
    n_users = int(users.max()) + 1 if len(users) else 0
    keep_n = rng.integers(low, high + 1, size=n_users)
    kept = np.zeros(len(train), dtype=bool)
    kept[order] = rank < keep_n[sorted_users]
    return train[kept].reset_index(drop=True)


def place_after_training(synthetic: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """`synthetic` with each row's timestamp set to its user's last training timestamp (see the module docstring)."""
    last = train.groupby("user")["timestamp"].max()
    out = synthetic.copy()
    out["timestamp"] = last.reindex(out["user"].to_numpy()).fillna(0).to_numpy(np.int64)
    return out


def augmented_split(split: Split, train: pd.DataFrame, synthetic: pd.DataFrame | None) -> Split:
    """`split` with `train` (+ `synthetic`, after the real rows at equal times) as its training part; same valid and test."""
    parts = [train[COLUMNS]] + ([synthetic[COLUMNS]] if synthetic is not None and len(synthetic) else [])
    frame = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
    frame = frame.astype({"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64})
    return Split(split.dataset, frame, split.valid, split.test, f"{split.strategy}+augmented")


def with_provenance(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    out = frame[COLUMNS].copy()
    out[PROVENANCE] = source
    return out


# ---------------------------------------------------------------------- generators
def simulate_interactions(make_user: Callable[[int, np.random.Generator], Any], browse: Any, train: Dataset,
                          users: Sequence[int], *, sessions: int, pages: int, slate_size: int, cap: np.ndarray,
                          seed: int, llm: Any = None, threads: int = 8, progress: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulated users' watches on pages from `browse`, as interactions, and the `SHOWN` control.

    `sessions` independent sessions per user (each from the user's fresh state); a user's
    watches are kept in the order they happened, without repeats or items the user already
    had, and cut to ``cap[user]``. The control holds, per user, as many of the items shown
    (watched or not, in the order shown) as the user has simulated interactions."""
    twins = Twins(make_user, [int(u) for u in users], seed)
    watched, shown = [], []
    for session in range(sessions):
        run = simulate_arm("augment", f"session-{session}", session, browse, twins, users, seed=seed, pages=pages, slate_size=slate_size,
                           llm=llm, threads=threads, progress=progress)  # fmt: skip
        impressions, _ = records_to_frames(run.records)
        impressions["session"] = session
        shown.append(impressions)
        watched.append(impressions[impressions["watched"]])
    frame = _new_in_order(pd.concat(watched, ignore_index=True), train, cap)
    rating = frame["rating"].fillna(3).to_numpy(np.float32) if train.has_ratings else np.ones(len(frame), np.float32)
    simulated = _as_interactions(frame, rating, SIMULATED, train)
    counts = np.bincount(simulated["user"].to_numpy(), minlength=train.n_users)
    control = _new_in_order(pd.concat(shown, ignore_index=True), train, counts)
    ratings = train.interactions["rating"].to_numpy(np.float32)
    drawn = AUGMENT_SHOWN_RATINGS.generator(seed).choice(ratings, size=len(control)) if train.has_ratings and len(ratings) else np.ones(len(control))
    return simulated, _as_interactions(control, drawn, SHOWN, train)


def _new_in_order(frame: pd.DataFrame, train: Dataset, cap: np.ndarray) -> pd.DataFrame:
    """Impressions in session/page/position order, without repeats or items the user had, at most ``cap[user]`` per user."""
    frame = frame.sort_values(["user", "session", "page", "position"], kind="stable").drop_duplicates(["user", "item"], keep="first")
    had = pd.MultiIndex.from_arrays([train.interactions["user"].to_numpy(), train.interactions["item"].to_numpy()])
    frame = frame[~pd.MultiIndex.from_arrays([frame["user"].to_numpy(), frame["item"].to_numpy()]).isin(had)]
    return frame[frame.groupby("user").cumcount().to_numpy() < cap[frame["user"].to_numpy().astype(np.int64)]]


def _as_interactions(frame: pd.DataFrame, rating: np.ndarray, source: str, train: Dataset) -> pd.DataFrame:
    out = pd.DataFrame({"user": frame["user"].to_numpy(np.int32), "item": frame["item"].to_numpy(np.int32),
                        "rating": np.asarray(rating, np.float32), "timestamp": np.zeros(len(frame), np.int64)})  # fmt: skip
    return place_after_training(with_provenance(out, source), train.interactions)


def naive_interactions(kind: str, counts: pd.Series, train: Dataset, rng: np.random.Generator) -> pd.DataFrame:
    """``counts[user]`` items per user the user did not have: popularity-proportional (`POPULARITY`) or uniform (`RANDOM`)."""
    n_items = train.n_items
    popularity = np.bincount(train.interactions["item"].to_numpy(), minlength=n_items).astype(np.float64)
    weights = popularity if kind == POPULARITY else np.ones(n_items)
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    histories = train.user_histories()
    ratings = train.interactions["rating"].to_numpy(np.float32)
    users, items = [], []
    for user, n in counts.items():
        if n <= 0:
            continue
        keys = log_weights + rng.gumbel(size=n_items)  # Gumbel top-k: a weighted draw without replacement
        keys[histories[int(user)]] = -np.inf
        allowed = int(np.isfinite(keys).sum())
        chosen = np.argsort(-keys, kind="stable")[: min(int(n), allowed)]
        users.extend([int(user)] * len(chosen))
        items.extend(chosen.tolist())
    drawn = rng.choice(ratings, size=len(items)) if len(ratings) and train.has_ratings else np.ones(len(items), np.float32)
    out = pd.DataFrame({"user": np.asarray(users, np.int32), "item": np.asarray(items, np.int32),
                        "rating": np.asarray(drawn, np.float32), "timestamp": np.zeros(len(items), np.int64)})  # fmt: skip
    return place_after_training(with_provenance(out, kind), train.interactions)


# ---------------------------------------------------------------------- evaluation
def per_user_metrics(model: Any, split: Split, part: str = "test", k: int = 10) -> pd.DataFrame:
    """NDCG@k and Recall@k per evaluated user, from `recommenders.evaluation.evaluate` (index ``user``).

    Items the user had before `part` in `split` are excluded (for an augmented split that
    includes the user's synthetic items); the model conditions on that history."""
    n_items = split.dataset.n_items
    result = evaluate(history_scorer(model, split, part), split, part, (k,), per_user=True,
                      batch_size=max(1, (1 << 22) // max(1, n_items)))  # the batches the recorded figures were scored in
    return result.per_user[[f"ndcg@{k}", f"recall@{k}"]]
