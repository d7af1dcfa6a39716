"""Per-round figures of a population, computed from the event store (so a resumed run reports the same).

* ``sessions``, ``impressions``: counts in the round;
* ``watch_rate``: watched / shown; ``mean_rating``: mean rating of what was watched;
* ``pages_per_session``; ``satisfaction``: mean interview score (1-10);
* ``genre_diversity_shown`` / ``genre_diversity_watched``: entropy of the genre distribution
  (each item spreads one unit evenly over its genres) divided by log(number of genres): 0 is
  one genre only, 1 all genres equally;
* ``coverage``: share of the catalogue shown in the round; ``cumulative_coverage``: so far;
* ``exposure_gini``: Gini coefficient of impressions over all items (0 equal, 1 one item only);
* the filter-bubble figures of Agent4Rec, per user and then averaged over the round's users
  (a user's genre mix is the items' genre mass, each item spreading one unit over its genres):
  ``intra_list_diversity``: normalised genre entropy of each page, averaged over pages;
  ``user_genre_diversity``: normalised genre entropy of everything shown to the user in the round;
  ``top_genre_share``: the share of the user's most-shown genre; ``genres_shown``: the number of
  distinct genres shown to the user; ``top_genre_share_watched`` and ``genres_watched``: the same
  over what the user watched (users who watched nothing are left out). Per-user counts grow with
  the items a user saw, so read them beside ``pages_per_session``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset

from .events import EventStore

FIGURES = (
    "sessions", "impressions", "watch_rate", "mean_rating", "pages_per_session", "satisfaction",
    "genre_diversity_shown", "genre_diversity_watched", "coverage", "cumulative_coverage", "exposure_gini",
    "intra_list_diversity", "user_genre_diversity", "top_genre_share", "genres_shown", "top_genre_share_watched", "genres_watched",
)  # fmt: skip

def genre_diversity(items: np.ndarray, matrix: np.ndarray) -> float:
    if len(items) == 0 or matrix.shape[1] < 2:
        return float("nan")
    mass = matrix[items].sum(0)
    if mass.sum() == 0:
        return float("nan")
    share = mass / mass.sum()
    share = share[share > 0]
    return float(-(share * np.log(share)).sum() / np.log(matrix.shape[1]))


def group_genre_figures(groups: np.ndarray, items: np.ndarray, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Genre figures of each group of items (``groups[k]`` is item ``items[k]``'s group id, 0..n-1).

    Returns arrays over groups: ``diversity`` (normalised genre entropy), ``top_share`` (share of
    the largest genre) and ``genres`` (distinct genres); NaN for a group without genre mass.
    """
    groups = np.asarray(groups, dtype=np.int64)
    n = int(groups.max()) + 1 if len(groups) else 0
    mass = np.zeros((n, matrix.shape[1]))
    np.add.at(mass, groups, matrix[np.asarray(items, dtype=np.int64)])
    total = mass.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = mass / total
        logs = np.where(share > 0, np.log(np.where(share > 0, share, 1.0)), 0.0)
        entropy = -(share * logs).sum(1) / np.log(matrix.shape[1]) if matrix.shape[1] > 1 else np.full(n, np.nan)
    empty = total[:, 0] == 0
    return {
        "diversity": np.where(empty, np.nan, entropy),
        "top_share": np.where(empty, np.nan, share.max(1, initial=0.0)),
        "genres": np.where(empty, np.nan, (mass > 0).sum(1).astype(float)),
    }


def bubble_figures(frame: pd.DataFrame, matrix: np.ndarray) -> dict[str, float]:
    """The per-user filter-bubble figures of one round's impressions (see the module docstring)."""
    items = frame["item"].to_numpy(np.int64)
    watched = frame["watched"].to_numpy(bool)
    _, user_of = np.unique(frame["user"].to_numpy(np.int64), return_inverse=True)
    _, page_of = np.unique(np.stack([frame["user"].to_numpy(np.int64), frame["page"].to_numpy(np.int64)], 1), axis=0, return_inverse=True)
    pages = group_genre_figures(page_of.reshape(-1), items, matrix)
    shown = group_genre_figures(user_of, items, matrix)
    _, watcher_of = np.unique(frame["user"].to_numpy(np.int64)[watched], return_inverse=True)
    seen = group_genre_figures(watcher_of, items[watched], matrix)
    return {
        "intra_list_diversity": _mean(pages["diversity"]),
        "user_genre_diversity": _mean(shown["diversity"]),
        "top_genre_share": _mean(shown["top_share"]),
        "genres_shown": _mean(shown["genres"]),
        "top_genre_share_watched": _mean(seen["top_share"]),
        "genres_watched": _mean(seen["genres"]),
    }


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * total))


def round_figures(events: EventStore, run: str, arm: str, round_: int, dataset: Dataset) -> dict[str, float]:
    """Round `round_`'s figures, read back from the event store."""
    (seen_so_far,) = events.connection.execute(
        "SELECT COUNT(DISTINCT item) FROM impressions WHERE run=? AND arm=? AND round<=?", (run, arm, round_)
    ).fetchone()
    return figures_of(events.impressions(run, arm, [round_]), events.sessions(run, arm, [round_]), dataset, int(seen_so_far))


def figures_of(frame: pd.DataFrame, sessions: pd.DataFrame, dataset: Dataset, seen_so_far: int) -> dict[str, float]:
    """A round's figures from its impressions (columns user, page, item, watched, rating; in store order) and
    sessions (pages, satisfaction); `seen_so_far` is how many distinct items were shown up to this round."""
    n_items = dataset.n_items
    nan = float("nan")
    if len(frame) == 0:
        return {name: (0.0 if name in ("sessions", "impressions") else nan) for name in FIGURES} | {"sessions": float(len(sessions))}
    items = frame["item"].to_numpy(np.int64)
    watched = frame["watched"].to_numpy(bool)
    matrix = dataset.genre_matrix()
    satisfaction = sessions["satisfaction"].dropna()
    return {
        "sessions": float(len(sessions)),
        "impressions": float(len(frame)),
        "watch_rate": float(watched.mean()),
        "mean_rating": float(frame.loc[watched, "rating"].mean()) if watched.any() else nan,
        "pages_per_session": float(sessions["pages"].mean()) if len(sessions) else nan,
        "satisfaction": float(satisfaction.mean()) if len(satisfaction) else nan,
        "genre_diversity_shown": genre_diversity(items, matrix),
        "genre_diversity_watched": genre_diversity(items[watched], matrix),
        "coverage": float(len(np.unique(items)) / n_items),
        "cumulative_coverage": float(seen_so_far / n_items),
        "exposure_gini": gini(np.bincount(items, minlength=n_items)),
        **bubble_figures(frame, matrix),
    }
