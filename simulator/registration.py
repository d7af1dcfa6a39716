"""The registered environments: ``gymnasium.make("recarena/MovieLens100K-v0")`` and its LLM twin.

Importing ``recarena.simulator.env`` registers them (`recarena.simulator.env.register_envs`); the
entry points below are named by string, so this module is imported only when an environment is made.

* ``recarena/MovieLens100K-v0``: statistical users fitted on all of ml-100k; deterministic
  given the seed.
* ``recarena/MovieLens100K-LLM-v0``: LLM users on the embedded model (SmolLM2); declared
  ``nondeterministic`` because an uncached LLM answer may differ between runs. Pass
  ``llm_cache`` (a SQLite path) so that repeated runs replay the same answers.

Keyword arguments are `EnvConfig` fields (``slate_size``, ``max_pages``, ``reward``, ...),
plus ``kit_seed``. The kit (profiles and preference model) is fitted once per process.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from recarena.agents.kit import UserKit, build_user_kit

from .env import EnvConfig, RecArenaEnv, UserFactory
from .vector_env import RecArenaVectorEnv

_KITS: dict[tuple[str, int], UserKit] = {}
_CONFIG_FIELDS = {f.name for f in fields(EnvConfig)}


def movielens_kit(name: str = "ml-100k", seed: int = 0) -> UserKit:
    """The user kit fitted on the whole of `name` (cached per process: fitting takes seconds)."""
    if (name, seed) not in _KITS:
        from recarena.simulator.data import load_dataset

        _KITS[(name, seed)] = build_user_kit(load_dataset(name), seed=seed)
    return _KITS[(name, seed)]


def _split(kwargs: dict[str, Any]) -> tuple[EnvConfig, dict[str, Any]]:
    unknown = set(kwargs) - _CONFIG_FIELDS - {"kit_seed", "llm_cache", "threads"}
    if unknown:
        raise TypeError(f"recarena env: unknown argument(s) {sorted(unknown)}; EnvConfig fields are {sorted(_CONFIG_FIELDS)}")
    config = EnvConfig(**{k: v for k, v in kwargs.items() if k in _CONFIG_FIELDS})
    return config, {k: v for k, v in kwargs.items() if k not in _CONFIG_FIELDS}


def _llm_users(kit: UserKit, llm_cache: Any) -> UserFactory:
    from recarena.agents.llm import LLMConfig, make_llm

    llm = make_llm("embedded", LLMConfig(cache_path=llm_cache, progress=False))
    return lambda user, rng: kit.llm_user(user, rng, llm)


def make_movielens100k(**kwargs: Any) -> RecArenaEnv:
    config, extra = _split(kwargs)
    return RecArenaEnv(movielens_kit(seed=extra.get("kit_seed", 0)), config)


def make_movielens100k_vector(num_envs: int = 1, **kwargs: Any) -> RecArenaVectorEnv:
    config, extra = _split(kwargs)
    return RecArenaVectorEnv(movielens_kit(seed=extra.get("kit_seed", 0)), num_envs, config, threads=extra.get("threads", 8))


def make_movielens100k_llm(**kwargs: Any) -> RecArenaEnv:
    config, extra = _split(kwargs)
    kit = movielens_kit(seed=extra.get("kit_seed", 0))
    return RecArenaEnv(kit, config, _llm_users(kit, extra.get("llm_cache")))


def make_movielens100k_llm_vector(num_envs: int = 1, **kwargs: Any) -> RecArenaVectorEnv:
    config, extra = _split(kwargs)
    kit = movielens_kit(seed=extra.get("kit_seed", 0))
    return RecArenaVectorEnv(kit, num_envs, config, _llm_users(kit, extra.get("llm_cache")), threads=extra.get("threads", 8))
