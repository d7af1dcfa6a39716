"""Per-round figures of a population, computed from the event store (so a resumed run reports the same).

* ``sessions``, ``impressions``: counts in the round;
* ``watch_rate``: watched / shown; ``mean_rating``: mean rating of what was watched;
* ``pages_per_session``; ``satisfaction``: mean interview score (1-10);
* ``genre_diversity_shown`` / ``genre_diversity_watched``: entropy of the genre distribution
  (each item spreads one unit evenly over its genres) divided by log(number of genres): 0 is
  one genre only, 1 all genres equally;
* ``coverage``: share of the catalogue shown in the round; ``cumulative_coverage``: so far;
* ``exposure_gini``: Gini coefficient of impressions over all items (0 equal, 1 one item only).
"""

from __future__ import annotations

import numpy as np

from recarena.simulator.data import Dataset

from .events import EventStore

FIGURES = (
    "sessions", "impressions", "watch_rate", "mean_rating", "pages_per_session", "satisfaction",
    "genre_diversity_shown", "genre_diversity_watched", "coverage", "cumulative_coverage", "exposure_gini",
)  # fmt: skip

_GENRE_MATRICES: dict[int, np.ndarray] = {}


def genre_matrix(dataset: Dataset) -> np.ndarray:
    """``[n_items, n_genres]``, each row summing to 1 over the item's genres (0 for none)."""
    key = id(dataset)
    if key not in _GENRE_MATRICES:
        vocabulary = {g: j for j, g in enumerate(dataset.genre_vocabulary())}
        matrix = np.zeros((dataset.n_items, max(1, len(vocabulary))))
        for i, genres in enumerate(dataset.items["genres"]):
            for g in genres:
                matrix[i, vocabulary[g]] += 1.0 / len(genres)
        _GENRE_MATRICES[key] = matrix
    return _GENRE_MATRICES[key]


def genre_diversity(items: np.ndarray, matrix: np.ndarray) -> float:
    if len(items) == 0 or matrix.shape[1] < 2:
        return float("nan")
    mass = matrix[items].sum(0)
    if mass.sum() == 0:
        return float("nan")
    share = mass / mass.sum()
    share = share[share > 0]
    return float(-(share * np.log(share)).sum() / np.log(matrix.shape[1]))


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * total))


def round_figures(events: EventStore, run: str, arm: str, round_: int, dataset: Dataset) -> dict[str, float]:
    frame = events.impressions(run, arm, [round_])
    sessions = events.sessions(run, arm, [round_])
    n_items = dataset.n_items
    nan = float("nan")
    if len(frame) == 0:
        return {name: (0.0 if name in ("sessions", "impressions") else nan) for name in FIGURES} | {"sessions": float(len(sessions))}
    items = frame["item"].to_numpy(np.int64)
    watched = frame["watched"].to_numpy(bool)
    matrix = genre_matrix(dataset)
    (seen_so_far,) = events.connection.execute(
        "SELECT COUNT(DISTINCT item) FROM impressions WHERE run=? AND arm=? AND round<=?", (run, arm, round_)
    ).fetchone()
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
    }
