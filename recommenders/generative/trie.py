"""A prefix trie of the valid semantic IDs, and beam search constrained by it.

A semantic ID is ``depth`` codes; code ``d`` is in ``0..sizes[d]-1``. The trie
numbers the distinct prefixes of each length (length 0: the root, node 0) and
keeps, per depth, a dense table ``children[d][node, code]``: the node the prefix
extends to, or -1 when no item's ID continues that way. At the last depth the
table holds the item id itself. Memory: ``sum_d nodes_d * sizes[d]`` int64, at
most about ``n_items * (sum of sizes)``.

`constrained_beam_search` asks a model for the log-probabilities of the next
code and masks every code the trie does not allow, so each beam stays a prefix
of a real item's ID and each finished beam is a real item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import RecommenderError

StepFn = Callable[[int, torch.Tensor], torch.Tensor]
"""``step(depth, codes)``: `codes` is ``[queries, beams, depth]``; returns log-probs ``[queries, beams, sizes[depth]]``."""


class SemanticIdTrie:
    """The valid IDs of a catalog; item ``i``'s ID is row ``i`` of `ids`."""

    def __init__(self, ids: np.ndarray, sizes: Sequence[int]):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] != len(sizes):
            raise RecommenderError(f"semantic IDs must be [items, {len(sizes)}] codes, got shape {ids.shape}")
        if (ids < 0).any() or (ids >= np.asarray(sizes)[None, :]).any():
            raise RecommenderError(f"a semantic ID holds a code outside its level's range {list(sizes)}")
        if len(np.unique(ids, axis=0)) != len(ids):
            raise RecommenderError("two items share one semantic ID; the collision code must tell them apart")
        self.ids = ids
        self.sizes = [int(s) for s in sizes]
        self.depth = ids.shape[1]
        self.n_items = len(ids)
        nodes = [np.zeros(len(ids), np.int64)]  # nodes[d][i]: the node of item i's prefix of length d
        for d in range(1, self.depth):
            nodes.append(np.unique(ids[:, :d], axis=0, return_inverse=True)[1].reshape(-1))
        nodes.append(np.arange(len(ids)))  # a full ID leads to its item
        self.prefix_nodes = [torch.as_tensor(n) for n in nodes]
        self.children: list[torch.Tensor] = []
        for d in range(self.depth):
            table = torch.full((int(nodes[d].max()) + 1, self.sizes[d]), -1, dtype=torch.long)
            table[torch.as_tensor(nodes[d]), torch.as_tensor(ids[:, d])] = torch.as_tensor(nodes[d + 1])
            self.children.append(table)

    def n_nodes(self, depth: int) -> int:
        """Distinct prefixes of length `depth` (``n_items`` at full depth)."""
        return self.n_items if depth == self.depth else len(self.children[depth])

    def to(self, device: torch.device) -> "SemanticIdTrie":
        self.children = [c.to(device) for c in self.children]
        self.prefix_nodes = [n.to(device) for n in self.prefix_nodes]
        return self

    def allowed(self, depth: int, nodes: torch.Tensor) -> torch.Tensor:
        """Boolean ``[*nodes.shape, sizes[depth]]``: which next codes keep each prefix valid."""
        return self.children[depth][nodes] >= 0

    def child(self, depth: int, nodes: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The nodes (item ids at the last depth) the prefixes `nodes` reach with `codes`; -1 where invalid."""
        return self.children[depth][nodes, codes]

    def contains(self, codes: np.ndarray) -> np.ndarray:
        """Whether each row of `codes` (full IDs) is a real item's ID."""
        known = {tuple(row) for row in self.ids.tolist()}
        return np.array([tuple(row) in known for row in np.asarray(codes, dtype=np.int64).tolist()], dtype=bool)


@dataclass
class BeamResult:
    """Finished beams and every score the search computed.

    ``items``/``scores``: the best ``beam_size`` items per query, best first
    (-1 / -inf where fewer valid IDs exist); ``codes``: the IDs the beams spelt,
    ``[queries, beam_size, depth]``. ``prefix_scores[d]``:
    ``[queries, n_nodes(d)]`` cumulative log-probability of each prefix of length
    ``d`` (1..depth) the search expanded, -inf for the rest; at full depth it is
    per item, and covers every child of the final beams.
    """

    items: torch.Tensor
    scores: torch.Tensor
    codes: torch.Tensor
    prefix_scores: list[torch.Tensor]


def constrained_beam_search(step: StepFn, trie: SemanticIdTrie, n_queries: int, beam_size: int, device: torch.device) -> BeamResult:
    """Beam search over semantic IDs that only ever extends prefixes of real items (see the module docstring)."""
    nodes = torch.zeros(n_queries, 1, dtype=torch.long, device=device)
    scores = torch.zeros(n_queries, 1, device=device)
    codes = torch.zeros(n_queries, 1, 0, dtype=torch.long, device=device)
    prefix_scores: list[torch.Tensor] = [torch.zeros(n_queries, 1, device=device)]
    for d in range(trie.depth):
        log_probs = step(d, codes).float()
        allowed = trie.allowed(d, nodes) & torch.isfinite(scores)[..., None]
        total = torch.where(allowed, scores[..., None] + log_probs, torch.full_like(log_probs, -torch.inf))
        reached = trie.children[d][nodes]  # [queries, beams, size]: child node per code
        expanded = torch.full((n_queries, trie.n_nodes(d + 1)), -torch.inf, device=device)
        rows = torch.arange(n_queries, device=device)[:, None, None].expand_as(reached)
        expanded[rows[allowed], reached[allowed]] = total[allowed]
        prefix_scores.append(expanded)
        flat = total.reshape(n_queries, -1)
        top = torch.topk(flat, min(beam_size, flat.shape[1]), dim=1)
        parent = torch.div(top.indices, trie.sizes[d], rounding_mode="floor")
        code = top.indices % trie.sizes[d]
        scores = top.values
        nodes = trie.child(d, torch.gather(nodes, 1, parent), code)
        nodes = torch.where(torch.isfinite(scores), nodes, torch.zeros_like(nodes)).clamp_min(0)
        codes = torch.cat([torch.gather(codes, 1, parent[..., None].expand(-1, -1, d)), code[..., None]], 2)
    items = torch.where(torch.isfinite(scores), nodes, torch.full_like(nodes, -1))
    if items.shape[1] < beam_size:
        pad = beam_size - items.shape[1]
        items = torch.cat([items, items.new_full((n_queries, pad), -1)], 1)
        scores = torch.cat([scores, scores.new_full((n_queries, pad), -torch.inf)], 1)
        codes = torch.cat([codes, codes.new_full((n_queries, pad, trie.depth), -1)], 1)
    return BeamResult(items, scores, codes, prefix_scores[1:])


def tiered_item_scores(result: BeamResult, trie: SemanticIdTrie, gap: float = 1000.0) -> torch.Tensor:
    """``[queries, n_items]`` finite scores: an item's full log-probability where the search reached it,
    else the log-probability of its deepest expanded prefix minus ``gap`` per missing level (clamped so
    tiers never overlap). The beams rank first and the rest keep the model's order among themselves."""
    depth = trie.depth
    out = torch.full_like(result.prefix_scores[-1], -gap * (depth + 1))
    for d in range(1, depth + 1):  # shallow to deep: a deeper known prefix overrides
        values = result.prefix_scores[d - 1][:, trie.prefix_nodes[d]]
        out = torch.where(torch.isfinite(values), values.clamp_min(-gap + 1) - gap * (depth - d), out)
    return out
