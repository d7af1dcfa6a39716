"""Off-policy estimates of each arm's first-page watch rate from the control arm's logs.

A simulator is the one place where an off-policy estimator can be checked against the
answer: every arm was also simulated, so its true watch rate sits beside the estimates.

**Logging policy.** The control explores (`recarena.simulator.exploration.SlatePolicy` with ``page_epsilon``): on each page, with
probability epsilon, it shows a uniformly random ordered slate of ``slate_size`` items from its top
``pool`` items; otherwise its top ``slate_size`` in order. The propensity of item i at slot k
is therefore exact: ``pi0(i, k) = (1 - epsilon) * [i is the control's k-th item]
+ epsilon / pool * [i is in the control's top pool]``. A control that is a recommender service
(`recarena.recommenders.service`) may answer with its own propensities, the probability with which its
policy put each item at its rank; the greedy term is then ``(1 - epsilon) * p_k * [i is its k-th item]``.
The control is asked again for each user's first page (the same request, so a service that draws from
its request gives the same answer) and its answer's propensities are the ones used.

**Estimand.** A target arm's watch rate per slot on the first page, where it shows its
deterministic top ``slate_size`` (the same slate it showed in its own simulated sessions).
The estimators treat each slot as a bandit round whose reward depends on the user, the item
and the position only (true of statistical users on a first page; an LLM user may look at
the whole page):

* **IPS**: mean over logged slots of ``w * r`` with ``w = [logged item == target item] / pi0``;
* **SNIPS**: ``sum(w * r) / sum(w)`` (self-normalised: lower variance, a small bias);
* **DR**: ``mean(q(u, e, k) + w * (r - q(u, e, k)))`` with ``q`` a logistic reward model fitted
  on the control's logs (position, item popularity, user activity); it also covers the slots
  whose target item the control could never show (outside its top ``pool``), where IPS and
  SNIPS are blind ("support" is the share of target slots the logs could match).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recarena.scenarios.ab.world import World


def _slates(frame: pd.DataFrame, users: np.ndarray, k: int, column: str) -> np.ndarray:
    out = np.full((len(users), k), -1 if column == "item" else 0, dtype=np.int64)
    rows = pd.Index(users).get_indexer(frame["user"].to_numpy())
    positions = frame["position"].to_numpy()
    keep = (rows >= 0) & (positions < k)
    out[rows[keep], positions[keep]] = frame[column].to_numpy().astype(np.int64)[keep]
    return out


def fit_reward_model(features: np.ndarray, rewards: np.ndarray, l2: float = 1.0, iterations: int = 25) -> np.ndarray:
    """Logistic regression by Newton's method (ridge on all but the intercept); returns the weights."""
    x, y = np.asarray(features, float), np.asarray(rewards, float)
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _features(users: np.ndarray, items: np.ndarray, positions: np.ndarray, popularity: np.ndarray, activity: np.ndarray) -> np.ndarray:
    return np.stack([np.ones(len(items)), np.log1p(positions), np.log1p(popularity[items]), np.log1p(activity[users])], 1)


def estimate(logged_items: np.ndarray, logged_rewards: np.ndarray, target_items: np.ndarray, pool: np.ndarray,
             epsilon: float, q_target: np.ndarray, pool_propensities: np.ndarray | None = None) -> dict[str, float]:
    """IPS, SNIPS and DR of the target slates' per-slot reward (arrays ``[users, slots]``; see module docstring).

    `pool_propensities`: the control's own propensity of each pool item at its rank (a service's; None: 1)."""
    k = target_items.shape[1]
    pool_size = (pool >= 0).sum(1, keepdims=True).astype(float)
    greedy = (pool[:, :k] == target_items) * (pool_propensities[:, :k] if pool_propensities is not None else 1.0)
    in_pool = (pool[:, :, None] == target_items[:, None, :]).any(1) & (target_items >= 0)
    propensity = (1 - epsilon) * greedy + epsilon * in_pool / np.maximum(pool_size, 1)
    match = (logged_items == target_items) & (target_items >= 0)
    weight = np.where(match, 1.0 / np.where(propensity > 0, propensity, 1.0), 0.0)
    rewards = logged_rewards.astype(float)
    valid = target_items >= 0
    ips = float((weight * rewards)[valid].mean())
    snips = float((weight * rewards)[valid].sum() / weight[valid].sum()) if weight[valid].sum() > 0 else float("nan")
    dr = float((q_target + weight * (rewards - q_target))[valid].mean())
    return {"ips": ips, "snips": snips, "dr": dr, "support": float((propensity > 0)[valid].mean()), "matches": int(match.sum())}


def off_policy_estimates(world: World, impressions: pd.DataFrame, arms: dict[str, np.ndarray], models: dict[str, str], control: str,
                         *, slate_size: int, epsilon: float, pool_depth: int) -> dict[str, Any]:
    """Each non-control arm's first-page watch rate: simulated truth, naive, IPS, SNIPS, DR.

    The control logged with exploration `epsilon` over its top `pool_depth` items; pages held `slate_size` items."""
    k = slate_size
    first = impressions[impressions["page"] == 0]
    logged = first[first["arm"] == control]
    policy = (f"{control} logged with epsilon={epsilon}: per page, a random ordered slate from its top {pool_depth} with probability "
              f"{epsilon}, else its top {k}. Estimand: each arm's first-page watch rate per slot.")  # fmt: skip
    if len(logged) == 0:
        return {"policy": policy, "arms": {}}
    users = np.sort(logged["user"].unique()).astype(np.int64)
    logged_items = _slates(logged, users, k, "item")
    logged_rewards = _slates(logged.assign(watched=logged["watched"].astype(int)), users, k, "watched")
    ranked = world.recommenders[models[control]].recommend(users, max(k, pool_depth), exclude="seen")
    pool = np.asarray(ranked.items, dtype=np.int64)
    chances = getattr(ranked, "propensities", None)  # a recommender service's own propensities, when it gave any
    train = world.split.train_dataset().interactions
    popularity = np.bincount(train["item"].to_numpy(np.int64), minlength=world.dataset.n_items).astype(float)
    activity = np.bincount(train["user"].to_numpy(np.int64), minlength=world.dataset.n_users).astype(float)
    positions = np.broadcast_to(np.arange(k), logged_items.shape)
    shown = logged_items >= 0
    user_grid = np.broadcast_to(users[:, None], logged_items.shape)
    weights = fit_reward_model(_features(user_grid[shown], logged_items[shown], positions[shown], popularity, activity), logged_rewards[shown])
    out: dict[str, Any] = {}
    for label, model in models.items():
        if label == control:
            continue
        target = np.asarray(world.recommenders[model].recommend(users, k, exclude="seen").items, dtype=np.int64)
        safe = np.where(target >= 0, target, 0)
        q = 1 / (1 + np.exp(-(_features(user_grid.ravel(), safe.ravel(), positions.ravel(), popularity, activity) @ weights)))
        figures = estimate(logged_items, logged_rewards, target, pool, epsilon, q.reshape(target.shape), chances)
        truth_frame = first[first["arm"] == label]
        figures["truth"] = float(truth_frame["watched"].astype(float).mean()) if len(truth_frame) else float("nan")
        figures["naive"] = float(logged["watched"].astype(float).mean())
        figures["direct"] = float(q.reshape(target.shape)[target >= 0].mean())
        out[label] = figures
    return {"policy": policy, "arms": out, "reward_model": weights.tolist(), "logged_users": int(len(users))}
