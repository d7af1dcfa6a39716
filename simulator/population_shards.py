"""One round's sessions for a list of users, outside the Mesa model: what `Population` runs in
this process (``backend="local"``) or ships to Ray tasks (``backend="ray"``).

`round_sessions` is a pure function of its arguments (the users, the round's `RoundWorld`, the
users' session counts and watched sets): it seats the users and runs them through the session
engine (session_engine.py), and returns the finished `SessionRecord`s in user order, each
carrying the user's snapshot (``get_state``). The driver alone writes the event store and
restores its agents from the snapshots, so a round gives the same events however its users are
cut into shards: every random number of user u's session in round r comes from stream
``POPULATION_SESSION`` (seed, round, user), and its exploring slots from ``POPULATION_SLOTS``,
never from a shard's position.

On Ray a shard (`Shard`) carries only its users' ids, session counts, snapshots and watched
sets. The heavy parts travel as object references: `SharedUsers` (how to rebuild a user, put
once per run) and the `RoundWorld` (the recommender as updated so far, put once per round).
Each worker process resolves a reference once and keeps it (`_resolve`), so a run of many
shards deserialises the world once per worker rather than once per task.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from recarena.agents.contract import SimulatedUser
from recarena.simulator.data.streams import POPULATION_SESSION, POPULATION_SLOTS, POPULATION_USER

from .events import SessionRecord
from .session_engine import Seat, SessionPlan, run_sessions

UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


@dataclass(frozen=True)
class RoundWorld:
    """Everything a round's sessions need besides the users themselves."""

    recommender: Any
    plan: SessionPlan
    """The round's sessions: labels, round, simulated time, slate policy, catalogue, batch size."""
    seed: int


@dataclass(frozen=True)
class SharedUsers:
    """How a worker rebuilds a user: the factory, called with the same per-user seed (``POPULATION_USER``) as the driver."""

    make_user: UserFactory
    seed: int

    def build(self, user: int, state: dict[str, Any] | None) -> SimulatedUser:
        built = self.make_user(user, POPULATION_USER.generator(self.seed, user=user))
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


def round_sessions(
    world: RoundWorld,
    users: Sequence[SimulatedUser],
    user_ids: Sequence[int],
    sessions: Sequence[int],
    watched: Sequence[Collection[int]],
) -> list[SessionRecord]:
    """Round ``world.plan.round``'s sessions of `users` (ids `user_ids`, `sessions` earlier sessions each,
    `watched`: items each watched in earlier rounds), through the session engine.

    The users are changed in place (as their sessions change them); the records are in user order."""
    r = world.plan.round
    seats = []
    for user, u, count, seen in zip(users, user_ids, sessions, watched):
        user.rng = POPULATION_SESSION.generator(world.seed, round=r, user=u)
        seats.append(Seat(u, user, POPULATION_SLOTS.generator(world.seed, round=r, user=u), session=count, watched=seen))
    records = run_sessions(world.plan, world.recommender, seats, keep_state=True)
    return sorted(records, key=lambda record: record.user)


def run_shard(shared: tuple[Any, Any], shard: Shard) -> list[SessionRecord]:
    """A shard's sessions wherever the executor runs it: `shared` is ``(SharedUsers, RoundWorld)``,
    each possibly a Ray object reference."""
    users, world = _resolve(shared[0]), _resolve(shared[1])
    built = [users.build(task.user, task.state) for task in shard.users]
    return round_sessions(world, built, [t.user for t in shard.users], [t.sessions for t in shard.users], [t.watched for t in shard.users])


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
