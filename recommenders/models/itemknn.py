"""ItemKNN: item-item cosine similarity on the binary user-item matrix, pruned to each item's top neighbours.

``sim(i, j) = |users(i) & users(j)| / (sqrt(|users(i)|) * sqrt(|users(j)|) + shrink)``;
each item keeps its ``neighbours`` most similar items, and a user's score for
item j is the sum of ``sim(i, j)`` over the items i in the user's history
(the history it is given: train + validation on the test part). The similarity
is computed in blocks of items, so memory grows with the catalog, not its square.
`update` recomputes the similarities (a full refit; no gradient steps, so it is cheap).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from tqdm.auto import tqdm

from recarena.simulator.data import Dataset

from ..base import Recommender
from ..params import Params

_BLOCK_CELLS = 1 << 23


class ItemKNNParams(Params):
    """ItemKNN's parameters."""

    neighbours: int = Field(100, ge=1, description="similar items kept per item (top-neighbour pruning)")
    shrink: float = Field(0.0, ge=0, description="added to the cosine denominator; damps similarities of rare items")


class ItemKNN(Recommender):
    """Item-based nearest neighbours with cosine similarity (see the module docstring)."""

    name = "itemknn"
    Params = ItemKNNParams
    update_mode = "full"

    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        pairs = np.unique(np.stack([dataset.interactions["user"].to_numpy(), dataset.interactions["item"].to_numpy()], 1).astype(np.int64), axis=0)
        users, items = pairs[:, 0], pairs[:, 1]
        counts = np.bincount(items, minlength=self.n_items).astype(np.float32)
        norms = torch.from_numpy(np.sqrt(counts))
        # item x user incidence, sparse; dense user columns are built per block of items.
        incidence = torch.sparse_coo_tensor(torch.from_numpy(np.stack([items, users])), torch.ones(len(items)), (self.n_items, self.n_users), check_invariants=False).coalesce()
        by_item = np.argsort(items, kind="stable")
        bounds = np.searchsorted(items[by_item], np.arange(self.n_items + 1))
        keep = min(self.params.neighbours, max(1, self.n_items - 1))
        block = max(1, _BLOCK_CELLS // max(self.n_items, self.n_users))
        rows, cols, values = [], [], []
        for start in tqdm(range(0, self.n_items, block), desc="itemknn similarities", disable=not self.params.progress, leave=False):
            stop = min(self.n_items, start + block)
            dense = torch.zeros(self.n_users, stop - start)
            members = by_item[bounds[start] : bounds[stop]]
            dense[torch.from_numpy(users[members]), torch.from_numpy(items[members] - start)] = 1.0
            overlap = torch.sparse.mm(incidence, dense)  # [n_items, block]: co-occurrence counts
            sims = overlap / (norms[:, None] * norms[start:stop][None, :] + self.params.shrink + 1e-12)
            sims[torch.arange(start, stop), torch.arange(stop - start)] = 0.0  # an item is not its own neighbour
            top = torch.topk(sims, min(keep, self.n_items), dim=0)
            nonzero = top.values > 0
            block_cols = torch.arange(start, stop).expand_as(top.indices)
            rows.append(block_cols[nonzero])
            cols.append(top.indices[nonzero])
            values.append(top.values[nonzero])
        index = torch.stack([torch.cat(rows), torch.cat(cols)])
        # similarity_t[j, i] = sim(i, j) for i among j's neighbours; scores = similarity_t @ history^T.
        self.similarity_t = torch.sparse_coo_tensor(index, torch.cat(values), (self.n_items, self.n_items), check_invariants=False).coalesce()

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        seen = torch.zeros(self.n_items, len(users))
        rows = np.concatenate(history) if history else np.array([], np.int64)
        cols = np.repeat(np.arange(len(users)), [len(h) for h in history])
        seen[torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)] = 1.0
        return torch.sparse.mm(self.similarity_t, seen).T.contiguous()

    def _state(self) -> dict[str, Any]:
        return {"indices": self.similarity_t.indices(), "values": self.similarity_t.values()}

    def _restore(self, state: dict[str, Any]) -> None:
        self.similarity_t = torch.sparse_coo_tensor(state["indices"], state["values"], (self.n_items, self.n_items), check_invariants=False).coalesce()
