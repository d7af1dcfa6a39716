"""Slate policies: how a population turns a recommender's ranking into the slate a user sees.

The plain policy shows the recommender's top ``slate_size``. Two ways to fight the narrowing
of a recommender that keeps learning from its own users (the filter bubble):

* **MMR genre re-ranking** (maximal marginal relevance, Carbonell & Goldstein 1998): from the
  recommender's top ``pool`` items, pick the slate greedily, each time the item maximising
  ``(1 - mmr) * relevance - mmr * max_similarity_to_the_items_already_picked``, where relevance is
  the recommender's score min-max scaled within the user's pool and similarity is the cosine of
  the items' genre indicator vectors. Deterministic.
* **epsilon-greedy**: each slot of the slate, with probability ``epsilon``, holds an item drawn
  uniformly from the catalogue instead (never one excluded for the user nor one already on the
  slate). The draws come from a generator the caller owns (the population seeds one per user
  and round), so a run stays reproducible and independent of batching.

MMR runs first, then epsilon replaces slots of its slate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlatePolicy:
    """How the recommender's ranking becomes a slate (see the module docstring); the default shows the top items."""

    epsilon: float = 0.0
    """Per slot: probability of a uniformly random catalogue item instead of the ranked one (0: off)."""
    mmr: float = 0.0
    """Weight of genre diversity against relevance in MMR re-ranking, in [0, 1) (0: off)."""
    pool: int = 100
    """How many of the recommender's top items MMR re-ranks."""

    def validate(self) -> None:
        """ValueError naming the field when a setting is impossible."""
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon: must be in [0, 1], got {self.epsilon}")
        if not 0.0 <= self.mmr < 1.0:
            raise ValueError(f"mmr: must be in [0, 1), got {self.mmr}")
        if self.pool < 1:
            raise ValueError(f"pool: must be at least 1, got {self.pool}")

    @property
    def plain(self) -> bool:
        return self.epsilon == 0.0 and self.mmr == 0.0

    def depth(self, slate_size: int) -> int:
        """How many ranked items to ask the recommender for."""
        return max(slate_size, self.pool) if self.mmr > 0 else slate_size


def genre_unit_vectors(genre_mass: np.ndarray) -> np.ndarray:
    """Rows of ``[n_items, n_genres]`` genre indicators scaled to unit length (zero rows stay zero)."""
    indicators = (np.asarray(genre_mass) > 0).astype(np.float64)
    norms = np.linalg.norm(indicators, axis=1, keepdims=True)
    return np.divide(indicators, norms, out=np.zeros_like(indicators), where=norms > 0)


def mmr_rerank(items: np.ndarray, scores: np.ndarray, k: int, unit_vectors: np.ndarray, weight: float) -> np.ndarray:
    """``[b, k]`` slates picked by MMR from each row's ranked `items` (id -1: none) and their `scores`."""
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    b, p = items.shape
    valid = (items >= 0) & np.isfinite(scores)
    low = np.where(valid, scores, np.inf).min(1, keepdims=True, initial=np.inf)
    high = np.where(valid, scores, -np.inf).max(1, keepdims=True, initial=-np.inf)
    spread = np.where(high > low, high - low, 1.0)
    relevance = np.where(valid, (scores - np.where(np.isfinite(low), low, 0.0)) / spread, 0.0)
    vectors = unit_vectors[np.clip(items, 0, None)] * valid[..., None]
    similarity = vectors @ vectors.transpose(0, 2, 1)
    rows = np.arange(b)
    taken = ~valid
    closest = np.zeros((b, p))
    slates = np.full((b, k), -1, dtype=np.int64)
    for slot in range(min(k, p)):
        objective = np.where(taken, -np.inf, (1.0 - weight) * relevance - weight * closest)
        pick = objective.argmax(1)
        ok = np.isfinite(objective[rows, pick])
        slates[ok, slot] = items[rows[ok], pick[ok]]
        taken[rows[ok], pick[ok]] = True
        closest = np.maximum(closest, similarity[rows, pick] * ok[:, None])
    return slates


def epsilon_slots(slate: list[int], excluded: np.ndarray, n_items: int, epsilon: float, rng: np.random.Generator) -> list[int]:
    """`slate` with each slot, with probability `epsilon`, replaced by a uniform item not excluded nor on the slate."""
    flips = rng.random(len(slate)) < epsilon  # one draw per slot always: the stream does not depend on the outcome
    if not flips.any():
        return slate
    banned = set(np.asarray(excluded, dtype=np.int64).tolist()) | set(slate)
    allowed = np.setdiff1d(np.arange(n_items), np.fromiter(banned, dtype=np.int64, count=len(banned)))
    out = list(slate)
    picks = rng.permutation(allowed)[: int(flips.sum())] if len(allowed) else np.empty(0, np.int64)
    for slot, item in zip(np.flatnonzero(flips), picks.tolist()):
        out[slot] = int(item)
    return out
