"""Recommenders by name, with validated parameters, from Python, a YAML block or CLI flags.

    build_recommender("bpr", {"dim": 32, "epochs": 50})
    build_recommender_from_config({"name": "sasrec", "dropout": 0.2})   # a parsed YAML block
    build_recommender("lightgcn", parse_assignments(["layers=3", "lr=0.002"]))  # CLI flags

The registry lists every class explicitly (no dynamic imports); an unknown name
or parameter is a one-line `RecommenderError` listing the valid ones. Names
reserved for models still to come (listed in ``PLANNED``) say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def recommender_names() -> list[str]:
    """The registered names, in registry order."""
    return list(REGISTRY)


def recommender_class(name: str) -> type[Recommender]:
    """The class registered under `name`; RecommenderError listing the valid names otherwise."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in PLANNED:
        raise RecommenderError(f"recommender {name!r} is planned but not implemented yet; available: {', '.join(REGISTRY)}")
    raise RecommenderError(f"unknown recommender {name!r}; available: {', '.join(REGISTRY)}")


def build_recommender(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A new, unfitted recommender `name` with `params` validated against its `Params` model."""
    return recommender_class(name)(**dict(params or {}))


def build_recommender_from_config(block: Mapping[str, Any]) -> Recommender:
    """From a config block ``{name: bpr, dim: 64, ...}`` (a parsed YAML mapping)."""
    if not isinstance(block, Mapping) or "name" not in block:
        raise RecommenderError(f"a recommender block needs a 'name' key (one of: {', '.join(REGISTRY)}); got {block!r}")
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
