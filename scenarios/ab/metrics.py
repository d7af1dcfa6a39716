"""Per-user and per-arm figures of an A/B test, from its impressions and sessions frames.

Per user (one session per user and arm), the unit the tests compare:

* ``watch_rate``: watched / shown (the CTR);
* ``mean_rating``: mean rating of what the user watched (undefined when nothing was);
* ``pages``: pages seen before leaving or the page limit (exit depth);
* ``satisfaction``: the interview's 1-10;
* ``genre_diversity``: intra-list genre diversity: the normalised genre entropy of each page
  (`recarena.simulator.metrics.genre_diversity`), averaged over the user's pages;
* ``novelty``: mean self-information ``-log2 p(i)`` of the shown items, ``p(i)`` the item's
  share of the training interactions (add-one smoothed): higher is less popular.

Per arm only (population figures, from ``[users, items]`` exposure counts): ``coverage``
(share of the catalogue shown at least once) and ``exposure_gini``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset
from recarena.simulator.metrics import genre_diversity

USER_METRICS = ("watch_rate", "mean_rating", "pages", "satisfaction", "genre_diversity", "novelty")
POPULATION_METRICS = ("coverage", "exposure_gini")
LOWER_IS_BETTER = frozenset({"exposure_gini"})
"""Metrics where a fall is the good news (exposure concentrated on fewer items is worse)."""
LABELS = {
    "watch_rate": "watch rate (CTR)", "mean_rating": "mean rating", "pages": "pages per session",
    "satisfaction": "satisfaction (1-10)", "genre_diversity": "genre diversity", "novelty": "novelty (bits)",
    "coverage": "catalogue coverage", "exposure_gini": "exposure Gini",
}  # fmt: skip


def finite_mean(series: pd.Series) -> float | None:
    """The mean of a metric's finite values (a user with no rating has NaN there); None when there is none."""
    values = series.to_numpy(float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def self_information(dataset: Dataset) -> np.ndarray:
    counts = np.bincount(dataset.interactions["item"].to_numpy(np.int64), minlength=dataset.n_items).astype(float)
    return -np.log2((counts + 1) / (counts.sum() + dataset.n_items))


def user_metrics(impressions: pd.DataFrame, sessions: pd.DataFrame, users: np.ndarray, dataset: Dataset, information: np.ndarray | None = None) -> pd.DataFrame:
    """One row per user in `users` (NaN where the user has no session), columns `USER_METRICS`."""
    users = np.asarray(users, dtype=np.int64)
    out = pd.DataFrame(index=pd.Index(users, name="user"), columns=list(USER_METRICS), dtype=float)
    if len(impressions) == 0:
        return out
    information = self_information(dataset) if information is None else information
    frame = impressions.assign(
        watched=impressions["watched"].astype(bool),
        rating=pd.to_numeric(impressions["rating"], errors="coerce").astype(float),
        info=information[impressions["item"].to_numpy(np.int64)],
    )
    grouped = frame.groupby("user")
    out["watch_rate"] = grouped["watched"].mean()
    out["mean_rating"] = frame[frame["watched"]].groupby("user")["rating"].mean()
    out["novelty"] = grouped["info"].mean()
    matrix = dataset.genre_matrix()
    items = frame["item"].to_numpy(np.int64)
    keys = frame["user"].to_numpy(np.int64) * 1000 + frame["page"].to_numpy(np.int64)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    page_users, page_values = [], []
    for chunk in np.split(order, bounds):
        page_users.append(int(keys[chunk[0]] // 1000))
        page_values.append(genre_diversity(items[chunk], matrix))
    out["genre_diversity"] = pd.Series(page_values, index=page_users).groupby(level=0).mean()
    s = sessions.set_index("user")
    out["pages"] = s["pages"].astype(float)
    out["satisfaction"] = pd.to_numeric(s["satisfaction"], errors="coerce").astype(float)
    return out


def exposure_counts(impressions: pd.DataFrame, users: np.ndarray, n_items: int) -> np.ndarray:
    """``[len(users), n_items]`` times each item was shown to each user."""
    users = np.asarray(users, dtype=np.int64)
    row = pd.Index(users).get_indexer(impressions["user"].to_numpy(np.int64))
    keep = row >= 0
    counts = np.zeros((len(users), n_items))
    np.add.at(counts, (row[keep], impressions["item"].to_numpy(np.int64)[keep]), 1.0)
    return counts


def genre_exposure(impressions: pd.DataFrame, dataset: Dataset) -> dict[str, float]:
    """Share of the arm's impressions per genre (each item spreads one unit over its genres)."""
    matrix = dataset.genre_matrix()
    mass = matrix[impressions["item"].to_numpy(np.int64)].sum(0) if len(impressions) else np.zeros(matrix.shape[1])
    total = mass.sum() or 1.0
    return {g: float(m / total) for g, m in zip(dataset.genre_vocabulary(), mass)}


def exit_depth_survival(sessions: pd.DataFrame, pages: int) -> list[float]:
    """Share of sessions that saw at least p pages, for p = 1..pages."""
    depth = sessions["pages"].to_numpy(float)
    return [float((depth >= p).mean()) if len(depth) else float("nan") for p in range(1, pages + 1)]


def llm_health(usage: dict[str, dict[str, float]], max_failure_rate: float) -> dict[str, Any]:
    """Per arm, the LLM requests and how many ended in the caller's fallback (a guess, not the model's answer).

    A run that finished stayed under `max_failure_rate` (the health rule stops it otherwise), but the
    fallbacks it had are still guesses in its figures: the summary and the report show them."""
    by_arm = {}
    for arm, used in usage.items():
        requests, fallbacks = int(used.get("requests", 0)), int(used.get("fallbacks", 0))
        by_arm[arm] = {"requests": requests, "fallbacks": fallbacks, "failures": int(used.get("failures", 0)),
                       "fallback_rate": fallbacks / requests if requests else None}
    return {"max_failure_rate": max_failure_rate, "requests": sum(a["requests"] for a in by_arm.values()),
            "fallbacks": sum(a["fallbacks"] for a in by_arm.values()), "by_arm": by_arm}
