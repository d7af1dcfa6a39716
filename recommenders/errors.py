"""The error types of the recommenders layer; every message is one readable line."""

from __future__ import annotations


class RecommenderError(ValueError):
    """A recommender was misused or misconfigured (unknown name, bad call)."""


class ParamsError(RecommenderError):
    """A hyper-parameter is unknown or invalid."""


class ServiceHealthError(RecommenderError):
    """A recommender service stopped answering, or fails more often than its health rule allows; one line.

    A `RecommenderError` (code that catches those sees it), but the command line tells it apart: like the LLM's
    health error it means the run could not go on, not that its settings were wrong (exit status 1)."""
