"""The A/B test's sessions in shards, on any `recarena.simulator.parallel` executor (Ray included).

Each arm's users not yet in the event store are cut into contiguous shards; a shard rebuilds its
users from the shared world with the same per-user streams as the local path (seed, arm, user id),
runs `simulate_arm` (recarena.simulator.arm_sessions) without a store, and returns its records; the driver writes each shard's
sessions to the event store as the shard finishes. So a run gives the same events wherever its
shards ran, and a killed run resumes from the sessions already stored.

LLM users need an LLM in every worker: each worker process builds one from ``--llm`` once and
shares the SQLite answer cache with the others (an endpoint is the natural backend here; the
embedded model loads once per worker).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recarena.agents.kit import UserKind
from recarena.agents.user_kinds import user_kind_needs_llm
from recarena.agents.llm.health import DEFAULT_MAX_FAILURE_RATE

from recarena.simulator.arm_sessions import ArmRun, Twins, simulate_arm
from recarena.simulator.events import EventStore
from recarena.simulator.exploration import SlatePolicy
from recarena.simulator.parallel import Executor, split_evenly

if TYPE_CHECKING:
    from recarena.scenarios.ab.world import World

_WORKER_LLMS: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class ArmShard:
    """One shard's work: which run and arm, which users, and who is interviewed in words."""

    run: str
    label: str
    position: int
    model: str
    users: tuple[int, ...]
    policy: SlatePolicy
    quoted: frozenset[int]


@dataclass(frozen=True)
class ShardSettings:
    """What every shard reads besides the world (`ABConfig.shard_settings`)."""

    user_kind: UserKind
    seed: int
    pages: int
    slate_size: int
    threads: int
    quotes: int
    llm: str
    llm_cache: Path | None
    max_llm_failure_rate: float = DEFAULT_MAX_FAILURE_RATE


def shared_world(world: World, config: ShardSettings) -> tuple[World, ShardSettings]:
    """What every shard needs, without the (process-bound) LLM: ``(world, settings)``."""
    return dataclasses.replace(world, llm=None), config


def _worker_llm(config: ShardSettings) -> Any:
    key = (config.llm, str(config.llm_cache))
    if key not in _WORKER_LLMS:
        from recarena.agents.llm import build_llm

        _WORKER_LLMS[key] = build_llm(config.llm, config.llm_cache, max_failure_rate=config.max_llm_failure_rate)
    return _WORKER_LLMS[key]


def run_shard(shared: tuple[World, ShardSettings], shard: ArmShard) -> ArmRun:
    """Simulate one shard (runs wherever the executor puts it)."""
    world, config = shared
    if user_kind_needs_llm(config.user_kind) and world.llm is None:
        world = dataclasses.replace(world, llm=_worker_llm(config))
    twins = Twins(world.user_factory(config.user_kind), shard.users, config.seed)
    return simulate_arm(shard.run, shard.label, shard.position, world.recommenders[shard.model], twins, shard.users, seed=config.seed,
                        pages=config.pages, slate_size=config.slate_size, store=None, policy=shard.policy,
                        llm=world.llm, threads=config.threads, quoted=set(shard.quoted), keep_state=True)  # fmt: skip


def simulate_arm_sharded(executor: Executor, shared: Any, config: ShardSettings, label: str, position: int, model: str, users: Any,
                         policy: SlatePolicy, store: EventStore, progress: Any = None, shards: int | None = None, *, run: str) -> ArmRun:  # fmt: skip
    """`simulate_arm` for one arm of run `run`, its users cut into `shards` (default: 2 per worker) run by `executor`."""
    started = time.perf_counter()
    quoted = frozenset(sorted(int(u) for u in users)[: config.quotes])
    done = store.completed_sessions(run, label)
    todo = [int(u) for u in users if (0, int(u)) not in done]
    if progress is not None and len(todo) < len(users):
        progress.update(len(users) - len(todo))
    jobs = [ArmShard(run, label, position, model, tuple(part), policy, quoted)
            for part in split_evenly(todo, shards or 2 * executor.workers)] if todo else []  # fmt: skip
    records, usage = [], {}
    for _, result in executor.imap_unordered(run_shard, shared, jobs):
        for record in sorted(result.records, key=lambda r: r.user):
            store.record_session(record)
        records.extend(result.records)
        for key, value in result.llm_usage.items():
            usage[key] = usage.get(key, 0.0) + value
        if progress is not None:
            progress.update(len(result.records))
    return ArmRun(label, sorted(records, key=lambda r: r.user), usage, time.perf_counter() - started)
