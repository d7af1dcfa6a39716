"""The simulated world: datasets, the Gymnasium environment, the Mesa population and the event store.

    import gymnasium, recarena.simulator               # registers recarena/MovieLens100K-v0
    env = gymnasium.make("recarena/MovieLens100K-v0")

Heavy modules load on first use (``recarena.simulator.RecArenaEnv`` imports env.py).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RecArenaEnv": "env", "EnvConfig": "env", "SlateSpace": "env", "InvalidSlateError": "env",
    "RecArenaVectorEnv": "vector_env", "show_pages": "sessions", "RowGenerators": "sessions",
    "EventStore": "events", "RunDirectory": "rundir", "RunConfigMismatch": "rundir",
    "Population": "population", "PopulationConfig": "population", "UserAgent": "population", "round_figures": "metrics",
    "movielens_kit": "registration",
}  # fmt: skip

__all__ = sorted([*_EXPORTS, "register_envs"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_envs() -> None:
    """Register recarena/MovieLens100K-v0 (statistical users) and recarena/MovieLens100K-LLM-v0 (idempotent).

    Entry points are strings, so registering imports nothing heavy (see registration.py)."""
    import gymnasium

    here = f"{__name__}.registration"
    for env_id, entry, nondeterministic in (
        ("recarena/MovieLens100K-v0", "make_movielens100k", False),
        ("recarena/MovieLens100K-LLM-v0", "make_movielens100k_llm", True),  # an uncached LLM answer may vary
    ):
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"{here}:{entry}",
                vector_entry_point=f"{here}:{entry}_vector",
                nondeterministic=nondeterministic,
            )


register_envs()
