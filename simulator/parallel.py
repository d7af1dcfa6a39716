"""Where shards of simulated users run: in this process, or as Ray tasks (``pip install 'recarena[ray]'``).

A scenario splits its users into shards, hands the executor what every shard needs (the world:
data, users' kit, recommenders) once, and gets each shard's result back as it finishes::

    executor = make_executor("ray", workers=2)
    world_handle = executor.share(world)          # ray.put once; the same object locally
    for index, result in executor.imap_unordered(simulate_shard, world_handle, shards):
        store(result)                             # the driver alone writes the event store
    executor.close()

Results must not depend on where a shard runs or how users are grouped: every user's random
stream derives from the seed and the user's id (never from a shard's position), and a shard's
function gets nothing but the shared object and its own shard. Ray is imported only here and only
when asked for, so the library works without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol, TypeVar

S = TypeVar("S")
R = TypeVar("R")

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn(shared, shard)`` for every shard and yields ``(shard index, result)`` as each finishes."""

    backend: str
    workers: int

    def share(self, obj: Any) -> Any: ...

    def imap_unordered(self, fn: Callable[[Any, S], R], shared: Any, shards: Sequence[S]) -> Iterator[tuple[int, R]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Shards one after the other in this process (the reference every other backend must match)."""

    backend = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = 1

    def share(self, obj: Any) -> Any:
        return obj

    def imap_unordered(self, fn: Callable[[Any, S], R], shared: Any, shards: Sequence[S]) -> Iterator[tuple[int, R]]:
        for index, shard in enumerate(shards):
            yield index, fn(shared, shard)

    def close(self) -> None:
        pass


class RayExecutor:
    """Shards as Ray tasks: on a local Ray with `workers` CPUs, or on the cluster at `address`."""

    backend = "ray"

    def __init__(self, workers: int = 2, address: str | None = None) -> None:
        ray = _import_ray()
        self.workers = workers
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                start_local_ray(workers)
        self._remote: dict[Callable, Any] = {}

    def share(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def imap_unordered(self, fn: Callable[[Any, S], R], shared: Any, shards: Sequence[S]) -> Iterator[tuple[int, R]]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(num_cpus=1)(fn)
        pending = {remote.remote(shared, shard): index for index, shard in enumerate(shards)}
        while pending:
            done, _ = self._ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), self._ray.get(ref)

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(backend: str, workers: int = 2, address: str | None = None) -> Executor:
    """The executor for `backend` ('local' or 'ray'); ValueError naming the choices, ImportError saying how to install Ray."""
    if backend == "local":
        return LocalExecutor(workers)
    if backend == "ray":
        return RayExecutor(workers, address)
    raise ValueError(f"backend: unknown execution backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def split_evenly(items: Sequence[S], shards: int) -> list[list[S]]:
    """`items` cut into at most `shards` contiguous, non-empty chunks of near-equal size, in order."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    items = list(items)
    count = min(shards, len(items)) or 1
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


def start_local_ray(cpus: int) -> None:
    """Start a Ray on this machine with `cpus` CPUs for shards, quietly (no dashboard, no worker logs)."""
    ray = _import_ray()
    # Ray nices its workers to 15 by default; here the workers are the run, and beside any other busy process
    # they starve (importing torch took 68 s instead of 3 s on a loaded 2-core machine).
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray backend needs Ray: pip install 'recarena[ray]' (or pip install ray)") from None
    return ray
