"""User kinds by name: the built-in ones (statistical, llm, hybrid) and those plugins add.

A distribution adds a kind through an entry point of the group ``recarena.users`` (the only door;
`recarena.simulator.data.plugins`)::

    [project.entry-points."recarena.users"]
    toy = "recarena_toy.users:make_toy_user"

The contract: the entry point names a callable (a function or a class)
``make(kit, user_id, rng, llm) -> SimulatedUser``, where `kit` is the run's `UserKit` (profiles,
preference model, statistical behaviour: see kit.py), `user_id` a user of the kit's dataset,
`rng` the user's own `numpy.random.Generator` (all its randomness, see contract.py) and `llm`
the run's chat model, or None. The user it returns keeps the `SimulatedUser` contract
(`recarena.agents.checker.check_user` is the conformance check to run on it). A maker that wants
the run's LLM says so with an attribute ``needs_llm = True`` (default False: it gets None and
no LLM is started for it). `UserKit.factory(kind, llm)` builds any kind's users. The maker and
the kit travel to parallel workers, so the maker must be importable (a module-level function or
class).

Plugins are loaded on first use, once. A built-in kind's name is never taken over, and a plugin
that fails to import or is not such a callable leaves the other kinds working: asking for its
name gives a one-line `UserKindError` naming its distribution and the cause.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from recarena.simulator.data.plugins import BrokenPlugin, PluginError, PluginTable, load_plugins

BUILTIN_USER_KINDS: tuple[str, ...] = ("statistical", "llm", "hybrid")
PLUGIN_GROUP = "recarena.users"


class UserKindError(ValueError):
    """An unknown or broken user kind, or one built without what it needs (one line)."""


def _check_plugin(name: str, loaded: Any) -> Any:
    if not callable(loaded):
        raise PluginError(f"{loaded!r} is not callable as make(kit, user_id, rng, llm)")
    try:
        inspect.signature(loaded).bind(None, 0, None, None)
    except TypeError:
        raise PluginError(f"{getattr(loaded, '__name__', loaded)!r} does not take (kit, user_id, rng, llm)") from None
    except ValueError:  # no signature to read (a builtin): trust it
        pass
    return loaded


@cache
def user_kind_plugins() -> PluginTable[Any]:
    """The plugins of the ``recarena.users`` group, loaded once (`user_kind_plugins.cache_clear()` reloads)."""
    return load_plugins(PLUGIN_GROUP, _check_plugin, reserved=BUILTIN_USER_KINDS)


def broken_user_kind_plugins() -> list[BrokenPlugin]:
    """The user kind plugins that could not be used, with their distributions and causes."""
    return list(user_kind_plugins().broken.values())


def user_kind_names(with_broken: bool = False) -> list[str]:
    """The usable kinds: the built-ins, then the plugins' in name order (`with_broken`: then the broken plugins' names,
    so that a command line accepts them and reports them in one line)."""
    plugins = user_kind_plugins()
    return list(BUILTIN_USER_KINDS) + list(plugins.loaded) + (list(plugins.broken) if with_broken else [])


def user_kind_maker(kind: str) -> Any:
    """A plugin kind's maker; None for a built-in kind; UserKindError for an unknown or broken one."""
    if kind in BUILTIN_USER_KINDS:
        return None
    plugins = user_kind_plugins()
    if kind in plugins.loaded:
        return plugins.loaded[kind]
    if kind in plugins.broken:
        raise UserKindError(plugins.broken[kind].message("user kind"))
    raise UserKindError(f"unknown user kind {kind!r}; choose from {', '.join(user_kind_names())}")


def user_kind_needs_llm(kind: str) -> bool:
    """Whether `kind`'s users need the run's LLM (llm and hybrid users; a plugin's maker with ``needs_llm = True``)."""
    maker = user_kind_maker(kind)
    if maker is None:
        return kind != "statistical"
    return bool(getattr(maker, "needs_llm", False))


class PluginUserMaker:
    """``make(user_id, rng)`` for a plugin kind: its maker with the kit and the LLM bound (picklable)."""

    def __init__(self, make: Any, kit: Any, llm: Any) -> None:
        self.make, self.kit, self.llm = make, kit, llm

    def __call__(self, user: int, rng: Any) -> Any:
        return self.make(self.kit, user, rng, self.llm)
