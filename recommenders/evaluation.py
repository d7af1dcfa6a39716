"""The offline evaluation protocol: full ranking (and the sampled protocol) with HR, Recall, NDCG, MRR.

A model is evaluated through a *scorer*: a function from an array of user ids to
a ``[len(users), n_items]`` array or tensor of scores, higher is better. For
each user with a target in the evaluated part of a `Split`, every item the user
is known to have had before that part (train for ``valid``; train + valid for
``test``) is excluded, the rest is ranked, and the top K is compared with the
targets. Equal scores are ranked by item id, so a result never depends on tie
order. Metrics are averaged over those users:

* HR@K: 1 if any target is in the top K.
* Recall@K: targets in the top K / number of targets.
* NDCG@K: sum of 1/log2(rank+1) over hits (rank from 1), divided by the same sum
  for a perfect list of min(#targets, K) hits.
* MRR@K: 1/rank of the first hit in the top K, 0 if none.

The sampled protocol (`evaluate_sampled`) ranks each target against
`n_negatives` items the user never interacted with, as many papers do; it is
kept for comparison with them and flatters models, so full ranking is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from recarena.simulator.data.splits import Split

Scorer = Callable[[np.ndarray], "torch.Tensor | np.ndarray"]
METRICS = ("hr", "recall", "ndcg", "mrr")
_BATCH_CELLS = 1 << 24  # scores held at once: 64 MB of float32


@dataclass(frozen=True)
class EvaluationResult:
    """Metric name (``"ndcg@10"``) to its mean over the evaluated users.

    `per_user`, when asked for (``evaluate(..., per_user=True)``), holds every evaluated user's
    metrics: one row per user (index ``user``, ascending), one float32 column per metric; its
    column means are `metrics`."""

    metrics: dict[str, float]
    n_users: int
    part: str
    protocol: str
    per_user: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def to_text(self) -> str:
        cells = "  ".join(f"{name}={value:.4f}" for name, value in self.metrics.items())
        return f"[{self.protocol}, {self.part}, {self.n_users} users] {cells}"


def metrics_from_hits(hits: torch.Tensor, n_targets: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user metrics from a ranked hit matrix.

    `hits` is ``[users, max(ks)]`` booleans: whether the item at each rank is a
    target. `n_targets` is each user's number of targets (at least 1).
    """
    hits = hits.float()
    if hits.shape[1] < max(ks):  # a catalog smaller than K: the missing ranks hold no hits
        hits = torch.nn.functional.pad(hits, (0, max(ks) - hits.shape[1]))
    n_targets = n_targets.float()
    positions = torch.arange(1, hits.shape[1] + 1, dtype=torch.float32)
    discounts = 1.0 / torch.log2(positions + 1.0)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        top = hits[:, :k]
        n_hits = top.sum(1)
        ideal = torch.cumsum(discounts[:k], 0)[(torch.clamp(n_targets, max=k) - 1).long()]
        first = torch.where(top.any(1), top.argmax(1).float() + 1.0, torch.full_like(n_hits, float("inf")))
        out[f"hr@{k}"] = (n_hits > 0).float()
        out[f"recall@{k}"] = n_hits / n_targets
        out[f"ndcg@{k}"] = (top * discounts[:k]).sum(1) / ideal
        out[f"mrr@{k}"] = 1.0 / first
    return out


def top_k_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The `k` best items per row, best first; equal scores are ordered by item id.

    `torch.topk` breaks ties arbitrarily, which would let NDCG@10 depend on
    whether K=20 was also asked for; this never does.
    """
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(1, keepdim=True)
    chosen = above | (tied & (torch.cumsum(tied, 1) <= room))
    items = chosen.nonzero()[:, 1].view(len(scores), k)  # ascending item id within each row
    order = torch.sort(scores.gather(1, items), dim=1, descending=True, stable=True).indices
    return items.gather(1, order)


def _grouped(frame: pd.DataFrame, users: np.ndarray) -> list[np.ndarray]:
    """Each of `users`' items in `frame`, as one array per user."""
    order = np.argsort(frame["user"].to_numpy(), kind="stable")
    sorted_users = frame["user"].to_numpy()[order]
    sorted_items = frame["item"].to_numpy()[order]
    lo = np.searchsorted(sorted_users, users, side="left")
    hi = np.searchsorted(sorted_users, users, side="right")
    return [sorted_items[a:b] for a, b in zip(lo, hi)]


def _to_tensor(scores: "torch.Tensor | np.ndarray", n_users: int, n_items: int) -> torch.Tensor:
    tensor = torch.as_tensor(scores).detach().to("cpu", torch.float32)
    if tensor.shape != (n_users, n_items):
        raise ValueError(f"scorer returned shape {tuple(tensor.shape)}, expected ({n_users}, {n_items})")
    return tensor.clone()


def _evaluated_users(split: Split, part: str) -> tuple[np.ndarray, pd.DataFrame]:
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    targets = split.valid if part == "valid" else split.test
    return np.unique(targets["user"].to_numpy()), targets


def evaluate(
    scorer: Scorer,
    split: Split,
    part: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (10,),
    batch_size: int | None = None,
    per_user: bool = False,
) -> EvaluationResult:
    """Full-ranking evaluation of `scorer` on the `part` of `split` (see the module docstring).

    With `per_user`, the result also keeps each evaluated user's metrics (`EvaluationResult.per_user`),
    for paired comparisons and per-user intervals."""
    users, targets = _evaluated_users(split, part)
    n_items = split.dataset.n_items
    known = _grouped(split.known_before(part), users)
    wanted = _grouped(targets, users)
    batch_size = batch_size or max(1, _BATCH_CELLS // max(1, n_items))
    k_max = min(max(ks), n_items)
    sums: dict[str, float] = {}
    kept: dict[str, list[np.ndarray]] = {}  # per-user values, batch by batch
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = _to_tensor(scorer(batch), len(batch), n_items)
        rows = np.arange(len(batch))
        excluded_rows = np.repeat(rows, [len(k) for k in known[start : start + len(batch)]])
        excluded_cols = np.concatenate(known[start : start + len(batch)]) if len(batch) else np.array([], np.int64)
        scores[torch.as_tensor(excluded_rows), torch.as_tensor(excluded_cols, dtype=torch.long)] = -torch.inf
        top = top_k_items(scores, k_max)
        is_target = torch.zeros(len(batch), n_items, dtype=torch.bool)
        target_lists = wanted[start : start + len(batch)]
        target_rows = np.repeat(rows, [len(t) for t in target_lists])
        is_target[torch.as_tensor(target_rows), torch.as_tensor(np.concatenate(target_lists), dtype=torch.long)] = True
        hits = torch.gather(is_target, 1, top)
        n_targets = torch.as_tensor([len(np.unique(t)) for t in target_lists])
        for name, values in metrics_from_hits(hits, n_targets, ks).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
            if per_user:
                kept.setdefault(name, []).append(values.numpy())
    table = None
    if per_user:
        names = [f"{m}@{k}" for k in ks for m in METRICS]
        table = pd.DataFrame({name: np.concatenate(kept[name]) if name in kept else np.empty(0, np.float32) for name in names},
                             index=pd.Index(users, name="user"))  # fmt: skip
    return EvaluationResult(_ordered(sums, len(users), ks), len(users), part, "full", table)


def evaluate_sampled(
    scorer: Scorer,
    split: Split,
    part: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (10,),
    n_negatives: int = 100,
    seed: int = 0,
) -> EvaluationResult:
    """Each target ranked against `n_negatives` items its user never interacted with.

    Negatives are drawn uniformly without replacement under `seed`; a negative with
    the same score as the target counts as ranked above it (no flattering ties).
    Metrics are averaged over (user, target) pairs.
    """
    users, targets = _evaluated_users(split, part)
    everything = _grouped(split.dataset.interactions, users)
    wanted = _grouped(targets, users)
    n_items = split.dataset.n_items
    rng = np.random.default_rng(seed)
    ranks: list[np.ndarray] = []
    batch_size = max(1, _BATCH_CELLS // max(1, n_items))
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = _to_tensor(scorer(batch), len(batch), n_items).numpy()
        for row, user_items, user_targets in zip(range(len(batch)), everything[start:], wanted[start:]):
            negatives = _sample_negatives(rng, n_items, set(user_items.tolist()), n_negatives)
            negative_scores = scores[row, negatives]
            for target in np.unique(user_targets):
                ranks.append(np.array([(negative_scores >= scores[row, target]).sum()]))
    rank = torch.as_tensor(np.concatenate(ranks) if ranks else np.array([], np.int64))
    k_max = max(ks)
    hits = rank[:, None] == torch.arange(k_max)[None, :]
    per_pair = metrics_from_hits(hits, torch.ones(len(rank)), ks)
    sums = {name: float(values.sum()) for name, values in per_pair.items()}
    return EvaluationResult(_ordered(sums, len(rank), ks), len(rank), part, f"sampled-{n_negatives}")


def _sample_negatives(rng: np.random.Generator, n_items: int, seen: set[int], n: int) -> np.ndarray:
    available = n_items - len(seen)
    if available <= n:
        return np.array(sorted(set(range(n_items)) - seen), dtype=np.int64)
    picked: list[int] = []
    chosen: set[int] = set()
    while len(picked) < n:
        for item in rng.integers(0, n_items, 2 * (n - len(picked))).tolist():
            if item not in seen and item not in chosen:
                chosen.add(item)
                picked.append(item)
                if len(picked) == n:
                    break
    return np.array(picked, dtype=np.int64)


def _ordered(sums: dict[str, float], count: int, ks: Sequence[int]) -> dict[str, float]:
    return {f"{m}@{k}": (sums.get(f"{m}@{k}", 0.0) / count if count else 0.0) for k in ks for m in METRICS}
