"""SASRec: causal self-attention over a user's item sequence (Kang & McAuley, 2018).

The input is the user's last ``max_len`` items (left-padded); item and position
embeddings pass through ``layers`` transformer blocks whose attention sees only
earlier positions; the hidden state at each position is scored against every
item embedding to predict the next item. Training cuts each user's training
sequence into windows of ``max_len + 1`` items (sharing one item between
windows, so every transition is a target once per epoch) and minimises the
cross-entropy over all items at every position, or, with
``loss="sampled_softmax"``, over the target and ``negatives`` uniformly drawn
items shared by the batch (for large catalogs).

`score` conditions on the history it is given: on the test part that is train +
validation, so the validation item is the last input. `update` extends the
histories (the next recommendations see the new items at once) and continues
training for ``update_epochs`` epochs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from ..embedding import EmbeddingRecommender
from ..params import EmbeddingParams


class SASRecParams(EmbeddingParams):
    """SASRec's parameters."""

    batch_size: int = Field(128, ge=1, description="training sequences (windows) per gradient step")
    max_len: int = Field(50, ge=2, description="most recent items the model reads")
    layers: int = Field(2, ge=1, le=12, description="transformer blocks")
    heads: int = Field(2, ge=1, description="attention heads (must divide dim)")
    inner_dim: int = Field(256, ge=1, description="feed-forward width of each block")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout on embeddings, attention and feed-forward outputs")
    loss: Literal["ce", "sampled_softmax"] = Field("ce", description="cross-entropy over all items, or sampled softmax")
    negatives: int = Field(1024, ge=1, description="shared uniform negatives per batch for sampled softmax")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "SASRecParams":
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        return self


class SASRecModule(nn.Module):
    """Embeddings, causal transformer blocks and a final layer norm; item 0 is padding."""

    def __init__(self, n_items: int, p: SASRecParams):
        super().__init__()
        self.heads = p.heads
        self.items = nn.Embedding(n_items + 1, p.dim, padding_idx=0)
        self.positions = nn.Embedding(p.max_len, p.dim)
        block = nn.TransformerEncoderLayer(p.dim, p.heads, p.inner_dim, p.dropout, activation="gelu", batch_first=True)
        self.blocks = nn.TransformerEncoder(block, p.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(p.dim)
        self.dropout = nn.Dropout(p.dropout)
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """``[batch, length]`` item ids + 1 (0 = padding) -> ``[batch, length, dim]`` hidden states."""
        batch, length = sequences.shape
        positions = torch.arange(length, device=sequences.device)
        hidden = self.dropout(self.norm(self.items(sequences) + self.positions(positions)[None]))
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=sequences.device), 1)
        blocked = causal[None] | (sequences == 0)[:, None, :]
        # Every position may attend to itself, so a padding row is never fully masked (no NaN).
        blocked &= ~torch.eye(length, dtype=torch.bool, device=sequences.device)[None]
        mask = torch.zeros(blocked.shape, device=sequences.device).masked_fill(blocked, float("-inf"))
        return self.blocks(hidden, mask=mask.repeat_interleave(self.heads, 0))

    def item_table(self) -> torch.Tensor:
        return self.items.weight[1:]


def training_windows(histories: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets (ids + 1, left-padded with 0) from every user's sequence."""
    inputs, targets = [], []
    span = max_len + 1
    for seq in histories:
        if len(seq) < 2:
            continue
        end = len(seq)
        while end >= 2:
            window = seq[max(0, end - span) : end] + 1
            row_in = np.zeros(max_len, np.int64)
            row_out = np.zeros(max_len, np.int64)
            row_in[max_len - len(window) + 1 :] = window[:-1]
            row_out[max_len - len(window) + 1 :] = window[1:]
            inputs.append(row_in)
            targets.append(row_out)
            end -= max_len  # the next window ends where this one's first input is
    if not inputs:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.stack(inputs), np.stack(targets)


class SASRec(EmbeddingRecommender):
    """Self-attentive sequential recommendation (see the module docstring)."""

    name = "sasrec"
    Params = SASRecParams

    def _build_module(self) -> nn.Module:
        return SASRecModule(self.n_items, self.params)

    def _prepare(self) -> None:
        self.windows = training_windows(self.histories, self.params.max_len)
        self.rng = np.random.default_rng([self.params.seed, len(self.interactions)])

    def _run_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        inputs, targets = self.windows
        order = self.rng.permutation(len(inputs))
        total, batches = 0.0, 0
        for start in range(0, len(order), self.params.batch_size):
            rows = order[start : start + self.params.batch_size]
            x = torch.as_tensor(inputs[rows], device=self.device)
            y = torch.as_tensor(targets[rows], device=self.device)
            hidden = self.module(x)[y > 0]
            wanted = y[y > 0] - 1
            loss = self._loss(hidden, wanted)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / max(1, batches)

    def _loss(self, hidden: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        table = self.module.item_table()
        if self.params.loss == "ce":
            return F.cross_entropy(hidden @ table.T, wanted)
        sampled = torch.as_tensor(self.rng.integers(0, self.n_items, self.params.negatives), device=self.device)
        positive = (hidden * table[wanted]).sum(-1, keepdim=True)
        negative = hidden @ table[sampled].T
        negative = negative.masked_fill(sampled[None, :] == wanted[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([positive, negative], 1)
        return F.cross_entropy(logits, torch.zeros(len(wanted), dtype=torch.long, device=self.device))

    def item_vectors(self) -> torch.Tensor:
        return self.module.item_table()

    def user_vectors(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        length = self.params.max_len
        batch = np.zeros((len(users), length), np.int64)
        for row, seq in enumerate(history):
            recent = seq[-length:] + 1
            if len(recent):
                batch[row, length - len(recent) :] = recent
        return self.module(torch.as_tensor(batch, device=self.device))[:, -1]
