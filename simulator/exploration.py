"""Slate policies: how the session engine turns a recommender's ranking into the slate a user sees.

`SlatePolicy` is the one policy type and `build_slates` the one slate builder. The plain policy
shows the recommender's top ``slate_size``, never an item the recommender knows the user had nor
one shown earlier in the session (`exclusions`).

One way to log for off-policy evaluation (the A/B control's logging policy, see scenarios/ab/ope.py):

* **page exploration**: each page, with probability ``page_epsilon``, shows a uniformly random
  ordered slate drawn from the recommender's top ``pool`` items instead of its top ``slate_size``
  (when the pool holds a full slate), so the logging propensities are exact.

Two ways to fight the narrowing of a recommender that keeps learning from its own users (the
filter bubble):

* **MMR genre re-ranking** (maximal marginal relevance, Carbonell & Goldstein 1998): from the
  recommender's top ``pool`` items, pick the slate greedily, each time the item maximising
  ``(1 - mmr) * relevance - mmr * max_similarity_to_the_items_already_picked``, where relevance is
  the recommender's score min-max scaled within the user's pool and similarity is the cosine of
  the items' genre indicator vectors. Deterministic.
* **epsilon-greedy**: each slot of the slate, with probability ``epsilon``, holds an item drawn
  uniformly from the catalogue instead (never one excluded for the user nor one already on the
  slate).

A page's exploring slate replaces MMR's pick; then epsilon replaces slots. Every draw comes from
the session's own generator, which the caller seeds per user (and arm or round), so a run stays
reproducible and independent of batching. Per user and page, in order: one uniform for the page
(``page_epsilon > 0``) and a permutation of the pool when it explores; then one uniform per slot
(``epsilon > 0``, non-empty slate) and a permutation of the allowed items when a slot flips.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .sessions import exclusions


@dataclass(frozen=True)
class SlatePolicy:
    """How the recommender's ranking becomes a slate (see the module docstring); the default shows the top items."""

    epsilon: float = 0.0
    """Per slot: probability of a uniformly random catalogue item instead of the ranked one (0: off)."""
    mmr: float = 0.0
    """Weight of genre diversity against relevance in MMR re-ranking, in [0, 1) (0: off)."""
    pool: int = 100
    """How many of the recommender's top items MMR re-ranks and an exploring page is drawn from."""
    page_epsilon: float = 0.0
    """Per page: probability of a uniformly random ordered slate from the top `pool` instead (0: off)."""

    def validate(self) -> None:
        """ValueError naming the field when a setting is impossible."""
        for name, value in (("epsilon", self.epsilon), ("page_epsilon", self.page_epsilon)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {value}")
        if not 0.0 <= self.mmr < 1.0:
            raise ValueError(f"mmr: must be in [0, 1), got {self.mmr}")
        if self.pool < 1:
            raise ValueError(f"pool: must be at least 1, got {self.pool}")

    @property
    def plain(self) -> bool:
        """Whether the policy shows the top items as ranked (nothing re-ranked or explored)."""
        return self.epsilon == 0.0 and self.mmr == 0.0 and self.page_epsilon == 0.0

    def recorded(self) -> dict[str, float | int]:
        """The settings as results and run directories record them: ``page_epsilon`` only where it is on, so a
        policy without page exploration reads as it did before the field existed (old runs still resume)."""
        return {k: v for k, v in asdict(self).items() if k != "page_epsilon" or v}

    def depth(self, slate_size: int) -> int:
        """How many ranked items to ask the recommender for."""
        return max(slate_size, self.pool) if self.mmr > 0 or self.page_epsilon > 0 else slate_size


def build_slates(recommender: Any, policy: SlatePolicy, users: Sequence[int], shown: Sequence[Sequence[int]], slate_size: int,
                 rngs: Sequence[np.random.Generator], *, also: Sequence[Collection[int]] | None = None, n_items: int = 0,
                 genre_vectors: np.ndarray | None = None, pages: Sequence[Any] | None = None) -> list[list[int]]:  # fmt: skip
    """Each user's slate by `policy` (empty when nothing is left to show; see the module docstring).

    `shown`: per user, the items shown earlier in the session; `also`: per user, more items never to
    show; `rngs`: per user, the generator the policy explores with; `n_items`: the catalogue an
    epsilon slot draws from; `genre_vectors`: the items' unit genre vectors for MMR; `pages`: per user,
    the session's pages so far (`session_pages`), passed on to a recommender that sets ``takes_session_pages``
    (a recommender service) and to no other."""
    exclude = exclusions(recommender, users, shown, also)
    session = {"pages": pages} if pages is not None and getattr(recommender, "takes_session_pages", False) else {}
    top = recommender.recommend(np.asarray(users, dtype=np.int64), policy.depth(slate_size), exclude=exclude, **session)
    ranked = np.asarray(top.items)
    picked = mmr_rerank(ranked, np.asarray(top.scores), slate_size, genre_vectors, policy.mmr) if policy.mmr > 0 else ranked
    slates = [[i for i in row if i >= 0] for row in picked[:, :slate_size].tolist()]
    if policy.page_epsilon > 0:
        for k, rng in enumerate(rngs):
            pool = ranked[k][ranked[k] >= 0]
            if rng.random() < policy.page_epsilon and len(pool) >= slate_size:
                slates[k] = rng.permutation(pool)[:slate_size].tolist()
    if policy.epsilon > 0:
        slates = [epsilon_slots(s, x, n_items, policy.epsilon, g) if s else s for s, x, g in zip(slates, exclude, rngs)]
    return slates


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
