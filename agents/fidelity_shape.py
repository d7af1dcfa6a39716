"""Behaviour shape: do simulated sessions look like real behaviour beyond single decisions?

From simulated sessions (impressions and sessions frames, one ``arm`` label per session
round, as `recarena.simulator.arm_sessions.records_to_frames` gives them):

* **Pages per session by activity tier**: the simulated pages and watches per session
  of users in each training activity tier, beside the real interactions per session in
  the training data (a real session is cut where a user's ratings are more than
  `gap_seconds` apart; MovieLens has no pages, so this is the closest real quantity).
  Across users, Spearman's rho between simulated pages per session and real interactions
  per session; the baseline is a tier-blind user that leaves after each page with one
  probability for everybody (matched to the simulated mean), drawn in the same run.
* **Genre mix**: each item spreads one unit evenly over its genres; a user's mix is the
  normalised sum over items. The simulated watches' mix is compared with the user's real
  held-out (test) mix by the Jensen-Shannon divergence (base 2, 0 = same, 1 = disjoint),
  per user and pooled over users. Baselines on the same shown items: a random user
  watching as many shown items per session as the simulated one, uniformly at random,
  and the popularity-threshold user (watches a shown item whose training popularity is
  above its tuned threshold). The user's own training mix against the held-out mix is a
  reference for how stable real taste is (not a simulator: it reads the real history).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from recarena.simulator.data import Dataset
from recarena.simulator.data.streams import FIDELITY_SHAPE


def real_session_lengths(frame: pd.DataFrame, n_users: int, gap_seconds: float) -> np.ndarray:
    """Mean interactions per real session for every user (NaN without interactions)."""
    ordered = frame.sort_values(["user", "timestamp"], kind="stable")
    users, times = ordered["user"].to_numpy(), ordered["timestamp"].to_numpy(float)
    starts = np.ones(len(users), bool)
    starts[1:] = (users[1:] != users[:-1]) | (np.diff(times) > gap_seconds)
    sessions = np.bincount(users[starts], minlength=n_users).astype(float)
    interactions = np.bincount(users, minlength=n_users).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sessions > 0, interactions / sessions, np.nan)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two non-negative vectors, normalised first."""
    p, q = np.asarray(p, float) / max(np.sum(p), 1e-12), np.asarray(q, float) / max(np.sum(q), 1e-12)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def _tier_figures(per_user: pd.DataFrame, tiers: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for tier in tiers:
        group = per_user[per_user["tier"] == tier]
        out[tier] = {
            "users": len(group),
            "pages_per_session": float(group["pages"].mean()) if len(group) else None,
            "watches_per_session": float(group["watched"].mean()) if len(group) else None,
            "tier_blind_pages_per_session": float(group["blind_pages"].mean()) if len(group) else None,
            "real_interactions_per_session": float(group["real"].mean()) if len(group) else None,
        }
    return out


def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return None
    return float(spearmanr(a[keep], b[keep]).statistic)


def behaviour_shape(impressions: pd.DataFrame, sessions: pd.DataFrame, users: Sequence[int], activity_tiers: Sequence[str],
                    held_out: pd.DataFrame, train: pd.DataFrame, dataset: Dataset, popularity: np.ndarray,
                    popularity_threshold: float, *, max_pages: int, gap_seconds: float, seed: int) -> dict:
    """Pages per session by tier and genre mix against the real one (see the module docstring).

    `activity_tiers[u]` is user u's training activity tier; `held_out` and `train` are the
    split's test and training parts; `popularity` counts training interactions per item."""
    rng = FIDELITY_SHAPE.generator(seed)
    tiers = list(dict.fromkeys(("low", "medium", "high", *activity_tiers)))
    users = np.asarray(users, dtype=np.int64)
    real = real_session_lengths(train, dataset.n_users, gap_seconds)
    per_session = sessions[sessions["user"].isin(users)]
    # The tier-blind user: one leave probability after every page, matched to the simulated mean pages.
    mean_pages = float(per_session["pages"].mean()) if len(per_session) else 1.0
    leave = 1.0 / max(mean_pages, 1.0)
    blind = np.minimum(rng.geometric(leave, len(per_session)), max_pages)
    per_user = per_session.assign(blind_pages=blind).groupby("user")[["pages", "watched", "blind_pages"]].mean()
    per_user["tier"] = [activity_tiers[u] for u in per_user.index]
    per_user["real"] = real[per_user.index.to_numpy()]
    pages_figures = {
        "by_tier": _tier_figures(per_user, tiers),
        "spearman_pages_vs_real": {"simulated": _rho(per_user["pages"].to_numpy(float), per_user["real"].to_numpy(float)),
                                   "tier_blind": _rho(per_user["blind_pages"].to_numpy(float), per_user["real"].to_numpy(float))},
        "spearman_watches_vs_real": _rho(per_user["watched"].to_numpy(float), per_user["real"].to_numpy(float)),
        "session_gap_seconds": gap_seconds,
        "sessions": len(per_session),
    }  # fmt: skip
    return {"pages": pages_figures, "genres": _genre_mix(impressions, users, held_out, train, dataset, popularity, popularity_threshold, rng)}


def _genre_mix(impressions, users, held_out, train, dataset, popularity, threshold, rng) -> dict:
    matrix, names = dataset.genre_matrix(), dataset.genre_vocabulary()
    shown = impressions[impressions["user"].isin(users)]
    mixes: dict[str, dict[int, np.ndarray]] = {k: {} for k in ("simulated", "random_same_count", "popularity_threshold")}
    for (user, _), page_rows in shown.groupby(["user", "arm"], sort=True):
        items = page_rows["item"].to_numpy(np.int64)
        watched = page_rows["watched"].to_numpy(bool)
        random_pick = rng.choice(items, size=int(watched.sum()), replace=False)
        picks = {"simulated": items[watched], "random_same_count": random_pick, "popularity_threshold": items[popularity[items] > threshold]}
        for name, chosen in picks.items():
            mixes[name][int(user)] = mixes[name].get(int(user), np.zeros(matrix.shape[1])) + matrix[chosen].sum(0)
    real = {int(u): matrix[g.to_numpy(np.int64)].sum(0) for u, g in held_out[held_out["user"].isin(users)].groupby("user")["item"]}
    history = {int(u): matrix[g.to_numpy(np.int64)].sum(0) for u, g in train[train["user"].isin(users)].groupby("user")["item"]}
    mixes["training_history_reference"] = history
    compared = [u for u in real if all(u in m and m[u].sum() > 0 for m in mixes.values())]
    per_user_js = {name: (float(np.mean([js_divergence(m[u], real[u]) for u in compared])) if compared else None) for name, m in mixes.items()}
    pooled = {name: np.sum([m[u] for u in compared], axis=0) if compared else np.zeros(matrix.shape[1]) for name, m in mixes.items()}
    pooled_real = np.sum([real[u] for u in compared], axis=0) if compared else np.zeros(matrix.shape[1])
    share = lambda v: (np.asarray(v) / max(float(np.sum(v)), 1e-12)).tolist()  # noqa: E731
    return {
        "genres": names,
        "users_compared": len(compared),
        "js_per_user": per_user_js,
        "js_pooled": {name: js_divergence(v, pooled_real) if compared else None for name, v in pooled.items()},
        "mix": {"real_held_out": share(pooled_real), **{name: share(v) for name, v in pooled.items()}},
    }
