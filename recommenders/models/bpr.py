"""BPR-MF: user and item embeddings trained with the Bayesian personalised ranking loss.

``score(u, i) = <p_u, q_i>``; each epoch every training pair is paired with one
uniformly drawn unseen negative and ``-log sigmoid(s(u, i) - s(u, j))`` is
minimised with Adam. The user vector is learnt, so `score` ignores the history
it is given. `update` continues training from the current embeddings
(``update_epochs`` epochs over all data so far).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..embedding import EmbeddingRecommender
from ..sampling import PairSampler


class MatrixFactorization(nn.Module):
    """User and item embedding tables (Xavier-initialised)."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items, dim)
        nn.init.xavier_normal_(self.users.weight)
        nn.init.xavier_normal_(self.items.weight)


def bpr_loss(user: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid((user * positive).sum(-1) - (user * negative).sum(-1)).mean()


class BPR(EmbeddingRecommender):
    """Matrix factorisation with the BPR loss (see the module docstring)."""

    name = "bpr"

    def _build_module(self) -> nn.Module:
        return MatrixFactorization(self.n_users, self.n_items, self.params.dim)

    def _prepare(self) -> None:
        self.sampler = PairSampler(self.interactions, self.n_items)
        self.rng = np.random.default_rng([self.params.seed, len(self.interactions)])

    def _run_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        total, batches = 0.0, 0
        for users, positives, negatives in self.sampler.epoch(self.params.batch_size, self.rng):
            u, p, n = (torch.as_tensor(x, device=self.device) for x in (users, positives, negatives))
            loss = bpr_loss(self.module.users(u), self.module.items(p), self.module.items(n))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / max(1, batches)

    def item_vectors(self) -> torch.Tensor:
        return self.module.items.weight

    def user_vectors(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        return self.module.users(torch.as_tensor(users, device=self.device))
