"""What the embedding models share: torch training through `training.train`, and faiss retrieval.

An `EmbeddingRecommender` scores ``user_vectors(users, history) @ item_vectors().T``.
After training (and after each validation) it caches the item vectors and
builds the faiss `ItemIndex` lazily, so `recommend` answers through the index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from recarena.simulator.data import Dataset

from .base import Recommendations, Recommender
from .params import EmbeddingParams
from .retrieval import ItemIndex, retrieval_recall
from .training import train


class EmbeddingRecommender(Recommender):
    """Base for BPR, LightGCN and SASRec: a torch `module`, user and item vectors, a faiss index."""

    Params = EmbeddingParams
    update_mode = "incremental"

    def __init__(self, params: EmbeddingParams | None = None, **overrides: Any):
        super().__init__(params, **overrides)
        self.module: torch.nn.Module | None = None
        self._items: torch.Tensor | None = None
        self._index: ItemIndex | None = None

    # ------------------------------------------------------------------ for subclasses
    def _build_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Build training tensors from ``self.interactions`` / ``self.histories``."""

    def _run_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        raise NotImplementedError

    def item_vectors(self) -> torch.Tensor:
        """``[n_items, dim]`` item vectors (may be cached by `_after_epoch`)."""
        raise NotImplementedError

    def user_vectors(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        """``[len(users), dim]`` user (query) vectors."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        self.module = self._build_module().to(self.device)
        self._train(valid, self.params.epochs, self.params.patience)

    def _update(self, new: pd.DataFrame) -> None:
        if self.params.update_epochs:
            self._train(None, self.params.update_epochs, self.params.update_epochs)
        else:
            self._after_epoch()

    def _train(self, valid: pd.DataFrame | None, epochs: int, patience: int) -> None:
        self._prepare()
        generator = torch.Generator(device="cpu").manual_seed(self.params.seed)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=self.params.lr, weight_decay=self.params.weight_decay)
        log = train(
            self, self.module, lambda epoch: self._run_epoch(optimizer, generator), valid,
            epochs, patience, self.params.eval_every, self.params.progress,
        )
        self.training_log = log.as_dict()

    def _after_epoch(self) -> None:
        self._items = None
        self._index = None

    def _cached_items(self) -> torch.Tensor:
        if self._items is None:
            with torch.no_grad():
                self._items = self.item_vectors().detach()
        return self._items

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        return self.user_vectors(users, history) @ self._cached_items().T

    def _retrieve(self, users: np.ndarray, history: list[np.ndarray], k: int, banned: list[np.ndarray] | None) -> Recommendations:
        if self._index is None:
            p = self.params
            vectors = self._cached_items().to("cpu", torch.float32).numpy()
            self._index = ItemIndex(vectors, p.index, p.ivf_lists, p.ivf_probe, p.hnsw_neighbours, p.hnsw_ef_search, p.seed)
        with torch.no_grad():
            queries = self.user_vectors(users, history).to("cpu", torch.float32).numpy()
        return self._index.search(queries, k, banned)

    @property
    def index(self) -> ItemIndex:
        """The faiss index recommend() uses (built on first use)."""
        if self._index is None:
            self._retrieve(np.zeros(1, np.int64), [self.histories[0]], 1, None)
        return self._index

    def index_recall(self, users: np.ndarray, k: int = 10) -> float:
        """Share of the exact top-k (no exclusions) that the configured index returns for `users`."""
        users = self._users(users)
        with torch.no_grad():
            queries = self.user_vectors(users, [self.histories[u] for u in users.tolist()]).to("cpu", torch.float32).numpy()
        vectors = self._cached_items().to("cpu", torch.float32).numpy()
        return retrieval_recall(vectors, queries, k, self.index)

    def _state(self) -> dict[str, Any]:
        return {"module": {k: v.detach().cpu() for k, v in self.module.state_dict().items()}, "log": self.training_log}

    def _restore(self, state: dict[str, Any]) -> None:
        self._prepare_for_restore()
        self.module = self._build_module().to(self.device)
        self.module.load_state_dict(state["module"])
        self.module.eval()
        self.training_log = state.get("log", {})
        self._after_epoch()

    def _prepare_for_restore(self) -> None:
        """Rebuild whatever `_build_module` needs from the histories (LightGCN: its graph)."""
