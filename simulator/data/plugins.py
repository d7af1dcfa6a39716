"""Entry points: the one door through which other distributions add names to recarena's registries.

A distribution declares, in its ``pyproject.toml``::

    [project.entry-points."recarena.recommenders"]
    toy-pop = "recarena_toy.models:ToyPop"        # a Recommender subclass (recarena.recommenders.registry)

    [project.entry-points."recarena.users"]
    toy = "recarena_toy.users:make_toy_user"      # a user maker (recarena.agents.user_kinds)

`load_plugins` reads one group once (the registries cache its answer): each entry point is imported
and handed to the registry's `check`, which returns what the registry keeps or raises `PluginError`.
A plugin whose import fails, or that `check` refuses, or whose name a built-in (or an earlier plugin)
already holds, is kept as a `BrokenPlugin`: it never breaks the built-ins or the other plugins, and
asking for its name gives one line naming its distribution and the cause.

It lives on the ground floor because both registries (users and recommenders, which never import
each other) read it; it imports nothing of recarena.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PluginError(TypeError):
    """A loaded entry point is not what its group's contract asks for (the message says why)."""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be used: its name, its distribution and why."""

    group: str
    name: str
    distribution: str
    cause: str

    def message(self, what: str) -> str:
        """One line: ``recommender 'x' of the plugin distribution 'dist' is broken: cause``."""
        return f"{what} {self.name!r} of the plugin distribution {self.distribution!r} is broken: {self.cause}"


@dataclass(frozen=True)
class PluginTable(Generic[T]):
    """What one entry-point group gave: the good plugins by name (in name order) and the broken ones."""

    loaded: dict[str, T] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)
    """Each good plugin's distribution."""
    broken: dict[str, BrokenPlugin] = field(default_factory=dict)


def _one_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return dist.name if dist is not None else "unknown distribution"


def load_plugins(group: str, check: Callable[[str, Any], T], reserved: Collection[str] = ()) -> PluginTable[T]:
    """Import every entry point of `group` and keep what `check(name, loaded)` accepts.

    `reserved` names (the built-ins) are refused: the built-in wins. Never raises for a plugin's fault."""
    table: PluginTable[T] = PluginTable()
    points = sorted(entry_points(group=group), key=lambda p: (p.name, _distribution(p)))
    for point in points:
        dist = _distribution(point)

        def refuse(cause: str) -> None:
            table.broken.setdefault(point.name, BrokenPlugin(group, point.name, dist, cause))

        if point.name in reserved:
            refuse(f"the name {point.name!r} is a built-in one, which wins")
            continue
        if point.name in table.loaded:
            refuse(f"the name {point.name!r} is taken by the distribution {table.distributions[point.name]!r}")
            continue
        try:
            loaded = point.load()
        except Exception as error:  # a plugin's import may fail in any way; it must not take the built-ins down
            refuse(f"loading {point.value!r} failed: {_one_line(error)}")
            continue
        try:
            table.loaded[point.name] = check(point.name, loaded)
        except PluginError as error:
            refuse(f"{point.value!r}: {error}")
            continue
        table.distributions[point.name] = dist
        table.broken.pop(point.name, None)
    return table
