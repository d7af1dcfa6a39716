"""Recommenders by name, with validated parameters, from Python, a YAML block or CLI flags.

    build_recommender("bpr", {"dim": 32, "epochs": 50})
    build_recommender_from_config({"name": "sasrec", "dropout": 0.2})   # a parsed YAML block
    build_recommender("lightgcn", parse_assignments(["layers=3", "lr=0.002"]))  # CLI flags

The registry lists every built-in class explicitly (no dynamic imports of our own
modules); an unknown name or parameter is a one-line `RecommenderError` listing the
valid ones. Names reserved for models still to come (listed in ``PLANNED``) say so.

Plugins: other distributions add names through entry points of the group
``recarena.recommenders`` (the only door; `recarena.simulator.data.plugins`)::

    [project.entry-points."recarena.recommenders"]
    toy-pop = "recarena_toy.models:ToyPop"

The contract: the entry point names a concrete `Recommender` subclass whose ``name`` is the
entry point's name and whose ``Params`` is a `Params` model (its parameters are validated like
the built-ins'); `check_recommender` is the conformance check to run on it. Plugins are loaded
on first use, once. A built-in's name is never taken over (the built-in wins), and a plugin
that fails to import or breaks the contract leaves the built-ins and the other plugins working:
asking for its name gives one line naming its distribution and the cause
(`broken_recommender_plugins` lists them).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from recarena.simulator.data.plugins import BrokenPlugin, PluginError, PluginTable, load_plugins

from .base import Recommender
from .errors import RecommenderError
from .generative.hstu import HSTU
from .generative.tiger import Tiger
from .llm_rerank import LLMReranker
from .models import BPR, ItemKNN, LightGCN, MostPopular, RandomRecommender, SASRec

REGISTRY: dict[str, type[Recommender]] = {
    "random": RandomRecommender,
    "pop": MostPopular,
    "itemknn": ItemKNN,
    "bpr": BPR,
    "lightgcn": LightGCN,
    "sasrec": SASRec,
    "hstu": HSTU,
    "tiger": Tiger,
    "llm-rerank": LLMReranker,
}
PLANNED: tuple[str, ...] = ()
PLUGIN_GROUP = "recarena.recommenders"


def _check_plugin(name: str, loaded: Any) -> type[Recommender]:
    """A plugin's class, if it keeps the contract (module docstring); PluginError saying what it breaks otherwise."""
    from .params import Params

    if not (isinstance(loaded, type) and issubclass(loaded, Recommender)):
        raise PluginError(f"{loaded!r} is not a Recommender subclass")
    if inspect.isabstract(loaded):
        raise PluginError(f"{loaded.__name__} is abstract (it leaves {', '.join(sorted(loaded.__abstractmethods__))} unimplemented)")
    params = getattr(loaded, "Params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise PluginError(f"{loaded.__name__}.Params is not a recarena.recommenders.Params model")
    if getattr(loaded, "name", None) != name:
        raise PluginError(f"{loaded.__name__}.name is {getattr(loaded, 'name', None)!r}, not the entry point's name {name!r}")
    return loaded


@cache
def recommender_plugins() -> PluginTable[type[Recommender]]:
    """The plugins of the ``recarena.recommenders`` group, loaded once (`recommender_plugins.cache_clear()` reloads)."""
    return load_plugins(PLUGIN_GROUP, _check_plugin, reserved=set(REGISTRY) | set(PLANNED))


def broken_recommender_plugins() -> list[BrokenPlugin]:
    """The recommender plugins that could not be used, with their distributions and causes."""
    return list(recommender_plugins().broken.values())


def recommender_names() -> list[str]:
    """The usable names: the built-ins in registry order, then the plugins' in name order."""
    return list(REGISTRY) + [name for name in recommender_plugins().loaded if name not in REGISTRY]


def recommender_class(name: str) -> type[Recommender]:
    """The class registered under `name`; RecommenderError listing the valid names otherwise (or naming a broken
    plugin's distribution and cause)."""
    if name in REGISTRY:
        return REGISTRY[name]
    plugins = recommender_plugins()
    if name in plugins.loaded:
        return plugins.loaded[name]
    if name in plugins.broken:
        raise RecommenderError(plugins.broken[name].message("recommender"))
    available = ", ".join(recommender_names())
    if name in PLANNED:
        raise RecommenderError(f"recommender {name!r} is planned but not implemented yet; available: {available}")
    raise RecommenderError(f"unknown recommender {name!r}; available: {available}")


def build_recommender(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A new, unfitted recommender `name` with `params` validated against its `Params` model."""
    return recommender_class(name)(**dict(params or {}))


def build_recommender_from_config(block: Mapping[str, Any]) -> Recommender:
    """From a config block ``{name: bpr, dim: 64, ...}`` (a parsed YAML mapping)."""
    if not isinstance(block, Mapping) or "name" not in block:
        raise RecommenderError(f"a recommender block needs a 'name' key (one of: {', '.join(recommender_names())}); got {block!r}")
    params = {k: v for k, v in block.items() if k != "name"}
    return build_recommender(str(block["name"]), params)


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """``["dim=64", "lr=0.01"]`` -> ``{"dim": "64", "lr": "0.01"}`` (values are converted on validation)."""
    out: dict[str, str] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise RecommenderError(f"model parameter {text!r} is not of the form name=value")
        out[key.strip().replace("-", "_")] = value.strip()
    return out
