"""The two sides the agreement check compares: what real held-out behaviour says of each arm, and what the simulation says.

* **Real** (`real_side`): every arm's recommender is evaluated offline on the split's test part
  (full ranking, conditioned on the training and validation histories), one figure per
  evaluated user: NDCG@k of the user's held-out items.
* **Simulated** (`simulated_side`): the paired A/B's primary metric of every simulated user in
  every arm, from the sessions' impressions.
* **The users' own model** (`user_model_scorer`): the simulated users' interest used as a
  recommender and evaluated like the arms, so a reader sees how much the users know.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import pandas as pd
import torch

from recarena.agents.dynamics import recent_items
from recarena.agents.kit import UserKit
from recarena.recommenders import Recommender, history_scorer
from recarena.recommenders.evaluation import evaluate
from recarena.simulator.data.splits import Split

PrimaryMetric = Literal["watch_rate", "watches"]
METRIC_LABELS: dict[str, str] = {"watch_rate": "watch rate (watches / items shown)", "watches": "watches per session"}


def real_side(recommenders: dict[str, Recommender], models: dict[str, str], split: Split, k: int) -> dict[str, pd.Series]:
    """Each arm's NDCG@k per evaluated test user (index: user), from `models` (arm label to registry name)."""
    out = {}
    for arm, model in models.items():
        result = evaluate(history_scorer(recommenders[model], split, "test"), split, "test", [k], per_user=True)
        out[arm] = result.per_user[f"ndcg@{k}"].astype(float)
    return out


def user_model_scorer(kit: UserKit, split: Split) -> Callable[[np.ndarray], torch.Tensor]:
    """The simulated users' interest in every item as a scorer for `evaluate` (the test protocol: each user's recent
    items are the end of its training and validation history, as the arms' recommenders are conditioned)."""
    n_items = split.dataset.n_items
    dynamics = kit.behaviour.dynamics
    if dynamics is not None:
        recent, times = recent_items(split.dataset.with_interactions(split.known_before("test")), dynamics.config.recent)

    def score(users: np.ndarray) -> torch.Tensor:
        users = np.asarray(users, np.int64)
        items = np.broadcast_to(np.arange(n_items, dtype=np.int64), (len(users), n_items))
        taste = kit.preferences.watch_logits(users, items)
        logits = taste if dynamics is None else dynamics.logits(taste, items, recent[users], times[users])
        return torch.as_tensor(np.asarray(logits, np.float32))

    return score


def user_model_ndcg(kit: UserKit, split: Split, k: int, users: np.ndarray) -> float:
    """NDCG@k of the users' own model on the test part (see `user_model_scorer`), over the test users `users`."""
    per_user = evaluate(user_model_scorer(kit, split), split, "test", [k], per_user=True).per_user[f"ndcg@{k}"]
    return float(per_user.loc[users].mean())


def simulated_side(impressions: pd.DataFrame, sessions: pd.DataFrame, arms: list[str], users: np.ndarray) -> dict[str, pd.DataFrame]:
    """Per arm, one row per simulated user (index: user) with ``watch_rate`` and ``watches`` (per session)."""
    out = {}
    for arm in arms:
        shown = impressions[impressions["arm"] == arm].groupby("user")["watched"].agg(["size", "sum"])
        frame = pd.DataFrame(index=pd.Index(users, name="user"))
        frame["watches"] = shown["sum"].reindex(users).fillna(0).to_numpy(float)
        frame["shown"] = shown["size"].reindex(users).fillna(0).to_numpy(float)
        if not len(sessions[(sessions["arm"] == arm)]) == len(users):
            raise RuntimeError(f"agreement: arm {arm} has {len(sessions[sessions['arm'] == arm])} sessions for {len(users)} users")
        frame["watch_rate"] = frame["watches"] / frame["shown"].where(frame["shown"] > 0)
        out[arm] = frame
    return out
