"""The two cheap baselines every quality figure stands beside: random and most-popular."""

from __future__ import annotations

import numpy as np
import torch

from recarena.simulator.data import Dataset


class MostPopular:
    """Scores each item by how many training interactions it has; the same for every user."""

    def fit(self, dataset: Dataset) -> "MostPopular":
        counts = np.bincount(dataset.interactions["item"].to_numpy(), minlength=dataset.n_items)
        self.item_scores = torch.as_tensor(counts, dtype=torch.float32)
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.item_scores.expand(len(users), -1)


class RandomScores:
    """Uniform random scores, fixed per (seed, user): the floor any model must clear."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, dataset: Dataset) -> "RandomScores":
        self.n_items = dataset.n_items
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        rows = []
        for user in np.asarray(users).tolist():
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(user))
            rows.append(torch.rand(self.n_items, generator=generator))
        return torch.stack(rows) if rows else torch.empty(0, self.n_items)
