"""Showing pages to many simulated users at once: the batched core shared by the vector env and the session engine.

`show_pages(users, slates)` gives the same reactions as calling ``user.view_page(slate)``
for each user in turn, only faster. It asks each user through its contract:

* users whose ``batch_behaviour()`` is the same object (the statistical users of one kit share
  their `StatisticalBehaviour`) are decided together by its ``view_pages`` over arrays. The
  contract asks it to give exactly what each user's `view_page` would: a statistical row still
  takes its random numbers from its own user's ``rng`` (`page_uniforms`), so the result does
  not depend on which users share a batch. That is what makes per-session seeding, and
  therefore resume, exact.
* every other user (LLM, hybrid) views its page in a thread pool, so that their LLM calls
  are in flight together (the LLM layer caps the concurrency per backend).

`exclusions` gives the items a slate must not hold, asking the recommender (``known_items``)
what each user had.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Collection, Sequence

import numpy as np

from recarena.agents.contract import BatchBehaviour, PageReaction, SimulatedUser


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
    """Per user, the items a slate must not hold: those the recommender knows the user had
    (``recommender.known_items``), those shown earlier in the session and, per user, any in `also`
    (a population's watches of earlier rounds, say)."""
    known = recommender.known_items(users)
    out = []
    for k, s in enumerate(shown):
        parts = [np.asarray(known[k], np.int64), np.asarray(s, np.int64)]
        if also is not None:
            parts.append(np.fromiter(also[k], np.int64, len(also[k])))
        out.append(np.concatenate(parts))
    return out


def show_pages(users: Sequence[SimulatedUser], slates: Sequence[Sequence[int]], threads: int = 8) -> list[PageReaction]:
    """Each user's reaction to its slate, as ``[u.view_page(s) for u, s in zip(users, slates)]`` would give."""
    if len(users) != len(slates):
        raise ValueError(f"show_pages: {len(users)} users but {len(slates)} slates")
    reactions: list[PageReaction | None] = [None] * len(users)
    groups: dict[tuple[int, int], tuple[BatchBehaviour, list[int]]] = {}
    others: list[int] = []
    for row, (user, slate) in enumerate(zip(users, slates)):
        behaviour = user.batch_behaviour()
        if behaviour is not None and len(slate):
            group = groups.get((id(behaviour), len(slate)))
            if group is None:
                group = groups[id(behaviour), len(slate)] = (behaviour, [])
            group[1].append(row)
        else:
            others.append(row)
    for behaviour, rows in groups.values():
        for row, reaction in zip(rows, behaviour.view_pages([users[r] for r in rows], [slates[r] for r in rows])):
            reactions[row] = reaction
    if len(others) > 1 and threads > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(others))) as pool:
            for row, reaction in zip(others, pool.map(lambda r: users[r].view_page(list(slates[r])), others)):
                reactions[row] = reaction
    else:
        for row in others:
            reactions[row] = users[row].view_page(list(slates[row]))
    return reactions  # type: ignore[return-value]

