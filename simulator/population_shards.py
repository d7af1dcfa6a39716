"""One round's sessions for a list of users, outside the Mesa model: what `Population` runs in
this process (``backend="local"``) or ships to Ray tasks (``backend="ray"``).

`run_sessions` is a pure function of its arguments (the users, the round's `RoundWorld`, the
users' session counts and watched sets) and returns the finished `SessionRecord`s in user order,
each carrying the user's snapshot (``get_state``). The driver alone writes the event store and
restores its agents from the snapshots, so a round gives the same events however its users are
cut into shards: every random number of user u's session in round r comes from
``SeedSequence([seed, r, u])`` (and ``[seed, r, u, 1]`` for exploring slots), never from a
shard's position.

On Ray a shard (`Shard`) carries only its users' ids, session counts, snapshots and watched
sets. The heavy parts travel as object references: `SharedUsers` (how to rebuild a user, put
once per run) and the `RoundWorld` (the recommender as updated so far, put once per round).
Each worker process resolves a reference once and keeps it (`_resolve`), so a run of many
shards deserialises the world once per worker rather than once per task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from recarena.agents.contract import SessionContext, SimulatedUser
from recarena.agents.statistical import StatisticalBehaviour, StatisticalUser

from .events import PageRecord, SessionRecord
from .exploration import epsilon_slots, mmr_rerank
from .sessions import exclusions, show_pages

UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


@dataclass(frozen=True)
class RoundWorld:
    """Everything a round's sessions need besides the users themselves."""

    recommender: Any
    config: Any  # a PopulationConfig (not imported: population.py imports this module)
    seed: int
    round: int
    n_items: int
    base_time: int
    genre_vectors: np.ndarray | None = None


@dataclass(frozen=True)
class StatisticalFactory:
    """The kit's statistical users without the kit: profiles, behaviour and genres are all a
    user needs, and shipping the kit's history to every worker would only cost time."""

    profiles: Sequence[Any]
    behaviour: StatisticalBehaviour
    item_genres: Sequence[Sequence[str]]

    def __call__(self, user: int, rng: np.random.Generator) -> StatisticalUser:
        return StatisticalUser(self.profiles[user], self.behaviour, rng, self.item_genres)


@dataclass(frozen=True)
class SharedUsers:
    """How a worker rebuilds a user: the factory, called with the same per-user seed as the driver."""

    make_user: UserFactory
    seed: int

    def build(self, user: int, state: dict[str, Any] | None) -> SimulatedUser:
        built = self.make_user(user, np.random.default_rng(np.random.SeedSequence([self.seed, user])))
        if state is not None:
            built.set_state(state)
        return built


@dataclass(frozen=True)
class UserTask:
    """One user's part of a shard: id, sessions so far, snapshot (None: as built) and watched items."""

    user: int
    sessions: int
    state: dict[str, Any] | None
    watched: tuple[int, ...]


@dataclass(frozen=True)
class Shard:
    """The users one task runs, in user order."""

    users: tuple[UserTask, ...]


def run_sessions(
    world: RoundWorld,
    users: Sequence[SimulatedUser],
    user_ids: Sequence[int],
    sessions: Sequence[int],
    watched: Sequence[Collection[int]],
) -> list[SessionRecord]:
    """Round ``world.round``'s sessions of `users` (ids `user_ids`, `sessions` earlier sessions each,
    `watched`: items each watched in earlier rounds), stepped ``config.batch_size`` at a time.

    The users are changed in place (as their sessions change them); the records are in user order."""
    size = world.config.batch_size
    records: list[SessionRecord] = []
    for start in range(0, len(users), size):
        stop = start + size
        records.extend(_batch(world, list(users[start:stop]), list(user_ids[start:stop]), list(sessions[start:stop]), list(watched[start:stop])))
    return sorted(records, key=lambda record: record.user)


def run_shard(shared: tuple[Any, Any], shard: Shard) -> list[SessionRecord]:
    """A shard's sessions wherever the executor runs it: `shared` is ``(SharedUsers, RoundWorld)``,
    each possibly a Ray object reference."""
    users, world = _resolve(shared[0]), _resolve(shared[1])
    built = [users.build(task.user, task.state) for task in shard.users]
    return run_sessions(world, built, [t.user for t in shard.users], [t.sessions for t in shard.users], [t.watched for t in shard.users])


def _batch(world: RoundWorld, users: list[SimulatedUser], ids: list[int], counts: list[int], watched: list[Collection[int]]) -> list[SessionRecord]:
    c, r = world.config, world.round
    explore_rngs = []
    for user, u, n in zip(users, ids, counts):
        user.rng = np.random.default_rng(np.random.SeedSequence([world.seed, r, u]))
        explore_rngs.append(np.random.default_rng(np.random.SeedSequence([world.seed, r, u, 1])))
        user.start_session(SessionContext(session=n, round=r, max_pages=None, text=c.text))
    pages: list[list[PageRecord]] = [[] for _ in users]
    shown: list[list[int]] = [[] for _ in users]
    records: list[SessionRecord] = []
    alive = list(range(len(users)))
    sim_time = world.base_time + r * c.seconds_per_round
    for page in range(c.max_pages):
        if not alive:
            break
        slates = _slates(world, [ids[k] for k in alive], [shown[k] for k in alive], [watched[k] for k in alive], [explore_rngs[k] for k in alive])
        viewing = [k for k, s in zip(alive, slates) if s]
        started = time.time()
        reactions = show_pages([users[k] for k in viewing], [s for s in slates if s], c.threads)
        finished = time.time()
        for k, reaction in zip(viewing, reactions):
            pages[k].append(PageRecord(reaction, started, finished, sim_time))
            shown[k].extend(x.item for x in reaction.items)
        still, viewed = [], set(viewing)
        for k in alive:
            left = bool(pages[k] and pages[k][-1].reaction.leave)
            if left or page == c.max_pages - 1 or k not in viewed:
                user = users[k]
                interview = user.interview() if c.interview and pages[k] else None
                user.end_session()
                records.append(SessionRecord(c.run, c.arm, r, ids[k], counts[k], pages[k], left, interview, user.get_state()))
            else:
                still.append(k)
        alive = still
    return records


def _slates(world: RoundWorld, ids: list[int], shown: list[list[int]], watched: list[Collection[int]], explore_rngs: list[np.random.Generator]) -> list[list[int]]:
    c, recommender = world.config, world.recommender
    exclude = exclusions(recommender, ids, shown, watched if c.exclude_watched else None)
    policy, size = c.explore, c.slate_size
    top = recommender.recommend(np.array(ids, dtype=np.int64), policy.depth(size), exclude=exclude)
    ranked = np.asarray(top.items)
    if policy.mmr > 0:
        ranked = mmr_rerank(ranked, np.asarray(top.scores), size, world.genre_vectors, policy.mmr)
    slates = [[int(i) for i in row[:size] if i >= 0] for row in ranked]
    if policy.epsilon > 0:
        slates = [epsilon_slots(s, x, world.n_items, policy.epsilon, g) if s else s for s, x, g in zip(slates, exclude, explore_rngs)]
    return slates


# A worker process keeps the objects it resolved last (the run's users' factory, the round's world):
# a round's shards share both, so each is deserialised once per worker rather than once per task.
_RESOLVED: dict[Any, Any] = {}
_KEEP = 2


def _resolve(obj: Any) -> Any:
    """`obj` itself, or the object a Ray reference points to (fetched once per worker process)."""
    if not type(obj).__module__.startswith("ray"):
        return obj
    if obj in _RESOLVED:
        _RESOLVED[obj] = _RESOLVED.pop(obj)  # most recently used last
        return _RESOLVED[obj]
    import ray

    while len(_RESOLVED) >= _KEEP:  # the least recently used: an older round's world, never asked for again
        del _RESOLVED[next(iter(_RESOLVED))]
    _RESOLVED[obj] = ray.get(obj)
    return _RESOLVED[obj]
