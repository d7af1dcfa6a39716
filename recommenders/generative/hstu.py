"""HSTU: Hierarchical Sequential Transduction Units ("Actions Speak Louder than Words", Zhai et al., 2024).

Each layer projects the (layer-normed) input once and splits the SiLU of the
projection into U, V, Q and K. Attention is pointwise, not a softmax:
``A = SiLU(Q K^T + bias) / max_len`` under a causal mask, where the bias is
learnt per layer from the relative position ``i - j`` and from the log-bucketed
time gap ``t_i - t_j`` (seconds) between the two actions. The layer outputs
``x + W_o(Norm(A V) * U)``. Dividing by the fixed ``max_len`` (as the reference
implementation does) rather than the batch's padded length keeps a user's
output independent of the other users in a batch.

Sequences are right-padded per batch to the longest sequence in it (training
batches are drawn from length-sorted pools, so little is padded); with right
padding the causal mask alone keeps every real position off the padding. The
model is trained autoregressively on every position of each window of
``max_len + 1`` items, with the L2-normalised output scored against the
L2-normalised item embeddings at a ``temperature``: a full softmax over the
catalog when it is small, else a sampled softmax over the batch's own targets
(in-batch negatives) plus ``negatives`` uniform items, with the logQ correction
for how often each candidate is drawn and accidental hits masked.

`score` conditions on the given history. Time gaps need timestamps, which a
history of item ids lacks: the part of it that matches the start of the
user's known history takes the known timestamps, any later item takes the
last known one (gap 0); ``unknown_time_items`` counts such items. Retrieval is
over all item embeddings through `recarena.recommenders.retrieval` (faiss).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from recarena.simulator.data.dataset import per_user

from ..embedding import EmbeddingRecommender
from ..params import EmbeddingParams

_LOG_BUCKET_WIDTH = 0.301  # natural-log width of a time bucket, as in the reference implementation
_POOL_BATCHES = 32  # training batches drawn from one length-sorted pool


class HSTUParams(EmbeddingParams):
    """HSTU's parameters (defaults near the paper's MovieLens setting, scaled to 64 dimensions)."""

    batch_size: int = Field(128, ge=1, description="training sequences (windows) per gradient step")
    max_len: int = Field(200, ge=2, description="most recent items the model reads")
    layers: int = Field(2, ge=1, le=24, description="HSTU layers")
    heads: int = Field(1, ge=1, description="attention heads")
    attention_dim: int = Field(0, ge=0, description="query/key width per head; 0: dim // heads")
    value_dim: int = Field(0, ge=0, description="value/gate (U, V) width per head; 0: dim // heads")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on the input embeddings and before each layer's output projection")
    position_bias: bool = Field(True, description="learn an attention bias per relative position i - j")
    time_bias: bool = Field(True, description="learn an attention bias per log-bucketed time gap between two actions")
    time_buckets: int = Field(64, ge=2, description="log-scale time-gap buckets (bucket b covers about e^(0.3 b) seconds)")
    temperature: float = Field(0.05, gt=0, description="softmax temperature on the cosine between output and item embedding")
    loss: Literal["auto", "full", "sampled"] = Field(
        "auto", description="full softmax over all items, sampled softmax, or auto: full up to full_softmax_items items"
    )
    full_softmax_items: int = Field(20_000, ge=1, description="largest catalog that loss='auto' trains with a full softmax")
    negatives: int = Field(128, ge=1, description="uniform negatives shared by the batch in the sampled softmax")
    in_batch_negatives: bool = Field(True, description="sampled softmax: also use the batch's other targets as negatives")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
    compile: bool = Field(False, description="train through torch.compile (scoring stays eager)")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "HSTUParams":
        if (not self.attention_dim or not self.value_dim) and self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads}) unless attention_dim and value_dim are set")
        return self


def time_gap_buckets(times: torch.Tensor, buckets: int) -> torch.Tensor:
    """``[batch, n]`` timestamps -> ``[batch, n, n]`` bucket of ``|t_i - t_j|`` on a log scale."""
    gaps = (times[:, :, None] - times[:, None, :]).abs().clamp(min=1).float()
    return (torch.log(gaps) / _LOG_BUCKET_WIDTH).long().clamp(max=buckets - 1)


class HSTULayer(nn.Module):
    """One HSTU layer (see the module docstring); the biases are shared by the heads."""

    def __init__(self, p: HSTUParams):
        super().__init__()
        self.heads = p.heads
        self.qk_dim = p.attention_dim or p.dim // p.heads
        self.v_dim = p.value_dim or p.dim // p.heads
        self.max_len = p.max_len
        self.norm_in = nn.LayerNorm(p.dim)
        self.uvqk = nn.Linear(p.dim, p.heads * (2 * self.v_dim + 2 * self.qk_dim))
        self.out = nn.Linear(p.heads * self.v_dim, p.dim)
        self.dropout = nn.Dropout(p.dropout)
        self.position_bias = nn.Parameter(torch.zeros(p.max_len)) if p.position_bias else None
        self.time_bias = nn.Parameter(torch.zeros(p.time_buckets)) if p.time_bias else None

    def forward(self, x: torch.Tensor, causal: torch.Tensor, distance: torch.Tensor, gap_bucket: torch.Tensor | None) -> torch.Tensor:
        batch, n, _ = x.shape
        h, dv, dqk = self.heads, self.v_dim, self.qk_dim
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split([h * dv, h * dv, h * dqk, h * dqk], dim=-1)
        q = q.view(batch, n, h, dqk).transpose(1, 2)
        k = k.view(batch, n, h, dqk).transpose(1, 2)
        v = v.view(batch, n, h, dv).transpose(1, 2)
        logits = q @ k.transpose(-1, -2)  # [batch, heads, n, n]
        if self.position_bias is not None:
            logits = logits + self.position_bias[distance].to(logits.dtype)
        if self.time_bias is not None and gap_bucket is not None:
            logits = logits + self.time_bias[gap_bucket].to(logits.dtype)[:, None]
        weights = F.silu(logits) * causal.to(logits.dtype) / self.max_len
        mixed = (weights @ v).transpose(1, 2).reshape(batch, n, h * dv)
        mixed = F.layer_norm(mixed, (h * dv,))
        return x + self.out(self.dropout(u * mixed))


class HSTUModule(nn.Module):
    """Item embeddings (0 = padding), HSTU layers and L2-normalised outputs."""

    def __init__(self, n_items: int, p: HSTUParams):
        super().__init__()
        self.dim, self.buckets, self.use_time = p.dim, p.time_buckets, p.time_bias
        self.items = nn.Embedding(n_items + 1, p.dim, padding_idx=0)
        self.positions = nn.Embedding(p.max_len, p.dim)
        self.layers = nn.ModuleList(HSTULayer(p) for _ in range(p.layers))
        self.dropout = nn.Dropout(p.dropout)
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, sequences: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``[batch, n]`` item ids + 1 (0 = right padding) and timestamps -> ``[batch, n, dim]`` unit vectors."""
        n = sequences.shape[1]
        index = torch.arange(n, device=sequences.device)
        distance = (index[:, None] - index[None, :]).clamp(min=0)
        causal = index[:, None] >= index[None, :]
        x = self.dropout(self.items(sequences) * math.sqrt(self.dim) + self.positions(index)[None])
        x = x * (sequences > 0)[..., None]
        gap_bucket = time_gap_buckets(times, self.buckets) if self.use_time else None
        for layer in self.layers:
            x = layer(x, causal, distance, gap_bucket)
        return F.normalize(x.float(), dim=-1)

    def item_table(self) -> torch.Tensor:
        return F.normalize(self.items.weight[1:].float(), dim=-1)


def training_windows(histories: list[np.ndarray], times: list[np.ndarray], max_len: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every user's sequence cut into windows of up to ``max_len + 1`` (items, timestamps), sharing one item between windows."""
    windows = []
    for seq, ts in zip(histories, times):
        end = len(seq)
        while end >= 2:
            start = max(0, end - max_len - 1)
            windows.append((seq[start:end], ts[start:end]))
            end -= max_len  # the next window ends where this one's first input is
    return windows


def pad_right(rows: list[np.ndarray], length: int, dtype: type = np.int64) -> np.ndarray:
    """Rows right-padded with 0 to `length`."""
    out = np.zeros((len(rows), length), dtype)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out


def length_pooled_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches whose members have similar lengths: sort shuffled pools by length, cut, shuffle the batches."""
    order = rng.permutation(len(lengths))
    pool = batch_size * _POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class HSTU(EmbeddingRecommender):
    """Generative retrieval with HSTU layers (see the module docstring)."""

    name = "hstu"
    Params = HSTUParams

    def __init__(self, params: HSTUParams | None = None, **overrides):
        super().__init__(params, **overrides)
        self.unknown_time_items = 0
        self._times: list[np.ndarray] = []
        self._times_of: list[np.ndarray] | None = None
        self._compiled: nn.Module | None = None

    # ------------------------------------------------------------------ training
    @property
    def bf16(self) -> bool:
        """Whether forward passes run under bf16 autocast."""
        return self.params.precision == "bf16" or (self.params.precision == "auto" and self.device.type == "cuda")

    @property
    def full_softmax(self) -> bool:
        """Whether training scores every item (else a sampled softmax)."""
        return self.params.loss == "full" or (self.params.loss == "auto" and self.n_items <= self.params.full_softmax_items)

    def _build_module(self) -> nn.Module:
        self._compiled = None
        return HSTUModule(self.n_items, self.params)

    def _known_times(self) -> list[np.ndarray]:
        if self._times_of is not self.histories:
            self._times = per_user(self.interactions, self.n_users, "timestamp")
            self._times_of = self.histories
        return self._times

    def _prepare(self) -> None:
        self.windows = training_windows(self.histories, self._known_times(), self.params.max_len)
        self.rng = np.random.default_rng([self.params.seed, len(self.interactions)])
        targets = np.concatenate([w[0][1:] for w in self.windows]) if self.windows else np.zeros(0, np.int64)
        self.target_share = torch.as_tensor(np.bincount(targets, minlength=self.n_items) / max(1, len(targets)), device=self.device)
        if self.params.compile and self._compiled is None:
            self._compiled = torch.compile(self.module, dynamic=True)

    def _run_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        lengths = np.array([len(items) - 1 for items, _ in self.windows])
        forward = self._compiled if self._compiled is not None else self.module
        total, batches = 0.0, 0
        for rows in length_pooled_batches(lengths, self.params.batch_size, self.rng):
            longest = int(lengths[rows].max())
            chosen = [self.windows[r] for r in rows]
            x = torch.as_tensor(pad_right([items[:-1] + 1 for items, _ in chosen], longest), device=self.device)
            t = torch.as_tensor(pad_right([ts[:-1] for _, ts in chosen], longest), device=self.device)
            y = torch.as_tensor(pad_right([items[1:] + 1 for items, _ in chosen], longest), device=self.device)
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
                hidden = forward(x, t)[y > 0]
                loss = self._loss(hidden, y[y > 0] - 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / max(1, batches)

    def _loss(self, hidden: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        table = self.module.item_table()
        scale = 1.0 / self.params.temperature
        if self.full_softmax:
            return F.cross_entropy(hidden @ table.T * scale, wanted)
        p = self.params
        uniform = torch.as_tensor(self.rng.integers(0, self.n_items, p.negatives), device=self.device)
        if p.in_batch_negatives:
            in_batch, target_column = torch.unique(wanted, return_inverse=True)
            candidates = torch.cat([in_batch, uniform])
            logits = hidden @ table[candidates].T * scale
            # logQ correction: expected draws of each candidate (in the batch's targets, or uniformly).
            expected = (len(wanted) * self.target_share[candidates]).clamp(max=1.0) + p.negatives / self.n_items
            logits = logits - torch.log(expected).to(logits.dtype)[None]
            hit = torch.zeros_like(logits, dtype=torch.bool)
            hit[:, len(in_batch) :] = uniform[None, :] == wanted[:, None]
            return F.cross_entropy(logits.masked_fill(hit, float("-inf")), target_column)
        positive = (hidden * table[wanted]).sum(-1, keepdim=True) * scale
        negative = (hidden @ table[uniform].T * scale).masked_fill(uniform[None, :] == wanted[:, None], float("-inf"))
        return F.cross_entropy(torch.cat([positive, negative], 1), torch.zeros(len(wanted), dtype=torch.long, device=self.device))

    # ------------------------------------------------------------------ scoring
    def item_vectors(self) -> torch.Tensor:
        return self.module.item_table()

    def history_times(self, users: np.ndarray, history: list[np.ndarray]) -> list[np.ndarray]:
        """Timestamps for each history: the known ones where it matches the user's known sequence, then the last known."""
        known = self._known_times()
        out = []
        for user, seq in zip(users.tolist(), history):
            items, times = self.histories[user], known[user]
            m = min(len(seq), len(items))
            same = seq[:m] == items[:m]
            n = m if same.all() else int(np.argmin(same))
            filled = np.full(len(seq), times[n - 1] if n else 0, np.int64)
            filled[:n] = times[:n]
            self.unknown_time_items += len(seq) - n
            out.append(filled)
        return out

    def user_vectors(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        length = self.params.max_len
        times = self.history_times(users, history)
        recent = [seq[-length:] + 1 for seq in history]
        recent_times = [ts[-length:] for ts in times]
        longest = max(1, max((len(r) for r in recent), default=1))
        x = torch.as_tensor(pad_right(recent, longest), device=self.device)
        t = torch.as_tensor(pad_right(recent_times, longest), device=self.device)
        last = torch.as_tensor([max(0, len(r) - 1) for r in recent], device=self.device)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            hidden = self.module(x, t)
        return hidden[torch.arange(len(recent), device=self.device), last]
