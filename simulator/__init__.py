"""The simulated world: datasets, the Gymnasium environment, the Mesa population and the event store.

    import gymnasium, recarena.simulator.env           # registers recarena/MovieLens100K-v0
    env = gymnasium.make("recarena/MovieLens100K-v0")

Heavy modules load on first use (``recarena.simulator.RecArenaEnv`` imports env.py). Importing this
package (or its data, ``recarena.simulator.data``) registers nothing and imports no gymnasium:
the environments are registered when ``recarena.simulator.env`` is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RecArenaEnv": "env", "EnvConfig": "env", "SlateSpace": "env", "InvalidSlateError": "env",
    "RecArenaVectorEnv": "vector_env", "show_pages": "sessions", "RowGenerators": "sessions",
    "EventStore": "events", "RunDirectory": "rundir", "RunConfigMismatch": "rundir",
    "RunDirectoryError": "rundir", "RunDirectoryBusy": "rundir",
    "Population": "population", "PopulationConfig": "population", "UserAgent": "population", "round_figures": "metrics",
    "movielens_kit": "registration", "register_envs": "env",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

