"""The two cheap baselines every quality figure stands beside: random and most-popular."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from recarena.simulator.data import Dataset

from ..base import Recommender
from ..params import Params


class RandomRecommender(Recommender):
    """Uniform random scores, fixed per (seed, user): the floor any model must clear.

    Nothing is learnt; `update` only extends the histories (for "seen" exclusion).
    """

    name = "random"
    Params = Params
    update_mode = "incremental"

    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        pass

    def _update(self, new: pd.DataFrame) -> None:
        pass

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        rows = [np.random.default_rng([self.params.seed, int(u)]).random(self.n_items, dtype=np.float32) for u in users.tolist()]
        return torch.from_numpy(np.stack(rows))

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        pass


class MostPopular(Recommender):
    """Scores each item by its number of interactions; the same list for every user.

    `update` adds the new interactions to the counts (incremental).
    """

    name = "pop"
    Params = Params
    update_mode = "incremental"

    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        self.counts = torch.zeros(self.n_items, dtype=torch.float32)
        self._add(dataset.interactions)

    def _update(self, new: pd.DataFrame) -> None:
        self._add(new)

    def _add(self, frame: pd.DataFrame) -> None:
        self.counts += torch.as_tensor(np.bincount(frame["item"].to_numpy(), minlength=self.n_items), dtype=torch.float32)

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        return self.counts.expand(len(users), -1).clone()

    def _state(self) -> dict[str, Any]:
        return {"counts": self.counts}

    def _restore(self, state: dict[str, Any]) -> None:
        self.counts = state["counts"]
