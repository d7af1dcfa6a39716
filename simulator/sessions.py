"""Showing pages to many simulated users at once: the batched core shared by the vector env and the population.

`show_pages(users, slates)` gives the same reactions as calling ``user.view_page(slate)``
for each user in turn, only faster:

* statistical users (exactly `StatisticalUser`) sharing one `StatisticalBehaviour` are
  decided together by ``StatisticalBehaviour.decide`` over arrays. Each row still takes
  its random numbers from its own user's ``rng`` (one ``rng.random(2k + 1)`` per page,
  `page_uniforms`: the very numbers `view_page` draws), so a batch of users reacts exactly
  as the users would one by one, and the result does not depend on which users share a
  batch. That is what makes per-session seeding, and therefore resume, exact.
* every other user (LLM, hybrid) views its page in a thread pool, so that their LLM calls
  are in flight together (the LLM layer caps the concurrency per backend).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Collection, Sequence

import numpy as np

from recarena.agents.contract import PageReaction, SimulatedUser
from recarena.agents.statistical import StatisticalUser, page_uniforms


class RowGenerators:
    """Looks like one `numpy.random.Generator` to ``StatisticalBehaviour.decide``; row r draws from generator r.

    ``random((n, ...))`` stacks ``generators[r].random(...)`` over rows, which is exactly what
    a single user's ``rng.random((1, ...))`` would have drawn. (`show_pages` fills one row per
    user at once with `page_uniforms` instead: three calls per user cost more than the decision.)
    """

    def __init__(self, generators: Sequence[np.random.Generator]):
        self.generators = list(generators)

    def random(self, shape: int | tuple[int, ...]) -> np.ndarray:
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if shape[0] != len(self.generators):
            raise ValueError(f"RowGenerators: asked for {shape[0]} rows, holds {len(self.generators)} generators")
        return np.stack([g.random(shape[1:]) for g in self.generators])


def exclusions(recommender: Any, users: Sequence[int], shown: Sequence[Sequence[int]],
               also: Sequence[Collection[int]] | None = None) -> list[np.ndarray]:  # fmt: skip
    """Per user, the items a slate must not hold: those the recommender knows the user had (its
    ``histories``, where it keeps them), those shown earlier in the session and, per user, any in `also`
    (a population's watches of earlier rounds, say)."""
    known = getattr(recommender, "histories", None)
    empty = np.empty(0, np.int64)
    out = []
    for k, (u, s) in enumerate(zip(users, shown)):
        parts = [np.asarray(known[u], np.int64) if known is not None else empty, np.asarray(s, np.int64)]
        if also is not None:
            parts.append(np.fromiter(also[k], np.int64, len(also[k])))
        out.append(np.concatenate(parts))
    return out


def already_had(had: Sequence[set[int]], rows: Sequence[Sequence[int]]) -> np.ndarray:
    """``[len(rows), slate]`` booleans: item ``rows[r][k]`` is in ``had[r]`` (never to be watched again)."""
    return np.array([[i in h for i in row] for h, row in zip(had, rows)], dtype=bool).reshape(len(rows), -1)


def is_batchable(user: SimulatedUser) -> bool:
    """Whether `user` can go through the vectorised statistical path (LLM users cannot)."""
    return type(user) is StatisticalUser


def show_pages(users: Sequence[SimulatedUser], slates: Sequence[Sequence[int]], threads: int = 8) -> list[PageReaction]:
    """Each user's reaction to its slate, as ``[u.view_page(s) for u, s in zip(users, slates)]`` would give."""
    if len(users) != len(slates):
        raise ValueError(f"show_pages: {len(users)} users but {len(slates)} slates")
    reactions: list[PageReaction | None] = [None] * len(users)
    groups: dict[tuple[int, int], list[int]] = {}
    others: list[int] = []
    for row, (user, slate) in enumerate(zip(users, slates)):
        if is_batchable(user) and len(slate):
            groups.setdefault((id(user.behaviour), len(slate)), []).append(row)
        else:
            others.append(row)
    for rows in groups.values():
        for row, reaction in zip(rows, _statistical_batch([users[r] for r in rows], [slates[r] for r in rows])):
            reactions[row] = reaction
    if len(others) > 1 and threads > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(others))) as pool:
            for row, reaction in zip(others, pool.map(lambda r: users[r].view_page(list(slates[r])), others)):
                reactions[row] = reaction
    else:
        for row in others:
            reactions[row] = users[row].view_page(list(slates[row]))
    return reactions  # type: ignore[return-value]


def _statistical_batch(users: Sequence[StatisticalUser], slates: Sequence[Sequence[int]]) -> list[PageReaction]:
    for user in users:
        user.session.require_active()
    behaviour = users[0].behaviour
    items = np.asarray(slates, dtype=np.int64)
    rows = items.tolist()
    n = len(users)
    ids = np.fromiter((u.profile.user for u in users), np.int64, n)
    pages = np.fromiter((u.session.pages for u in users), np.int64, n)
    already = already_had([u.had for u in users], rows)
    uniforms = page_uniforms([u.rng for u in users], items.shape[1])
    outcome = behaviour.decide(None, ids, items, pages, already, uniforms=uniforms)
    watched, ratings, leave = outcome.watched.tolist(), outcome.ratings.tolist(), outcome.leave.tolist()
    # `record_page` is the users' own bookkeeping (history, session, reasons): shared so both paths agree.
    return [user.record_page(rows[r], watched[r], ratings[r], leave[r]) for r, user in enumerate(users)]
