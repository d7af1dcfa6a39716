"""The error types of the recommenders layer; every message is one readable line."""

from __future__ import annotations


class RecommenderError(ValueError):
    """A recommender was misused or misconfigured (unknown name, bad call)."""


class ParamsError(RecommenderError):
    """A hyper-parameter is unknown or invalid."""
