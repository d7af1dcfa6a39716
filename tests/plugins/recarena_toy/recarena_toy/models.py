"""`toy-pop`: popularity with a validated extra parameter, as a plugin declares one."""

from __future__ import annotations

from pydantic import Field

from recarena.recommenders import MostPopular, Params


class ToyPopParams(Params):
    """The base parameters and one of its own."""

    smoothing: float = Field(1.0, gt=0, description="added to every item's count before ranking")


class ToyPop(MostPopular):
    """Most popular items, counts smoothed by `smoothing` (the same ranking as pop)."""

    name = "toy-pop"
    Params = ToyPopParams

    def _score(self, users, history):
        return super()._score(users, history) + self.params.smoothing
