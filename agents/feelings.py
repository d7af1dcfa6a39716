"""How a page felt, from its watches and their ratings: one rule for every user kind and the vector env's arrays."""

from __future__ import annotations

#: A page's feeling by the mean rating of its watches: the first level the mean reaches, else the last word.
FEELINGS: tuple[tuple[float, str], ...] = ((4.5, "delighted"), (3.5, "pleased"), (2.5, "lukewarm"))
FEELING_BELOW = "disappointed"


def feeling_of(n_watched: int, rating_sum: int) -> str:
    """How a page felt: bored with no watch, else by the mean rating of its watches (`FEELINGS`)."""
    if n_watched == 0:
        return "bored"
    mean = rating_sum / n_watched
    return next((word for level, word in FEELINGS if mean >= level), FEELING_BELOW)
