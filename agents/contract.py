"""The simulated-user contract: what the simulator calls, and what a user must answer.

A session, as the simulator drives it::

    user.start_session(SessionContext(session=0))
    while True:
        reaction = user.view_page(items)          # a slate of item ids
        if reaction.leave:
            break
    interview = user.interview()                  # optional: satisfaction in words and numbers
    user.end_session()

Rules every user follows (``check_user`` verifies them):

* `view_page` returns one `ItemReaction` per shown item, in order. An item is
  rated (1-5) exactly when it is watched. Reasons are text only when the session
  asked for text (``SessionContext.text``); otherwise None.
* After `leave` is True the session is over: another `view_page` is an error
  until the next `start_session`.
* `watch_probabilities` and `rating_probabilities` are pure judgements outside
  any session (no randomness, no state change): fidelity checks and the hybrid
  user's calibration read them.
* All randomness comes from the user's own ``rng`` (a `numpy.random.Generator`
  handed in by whoever builds the user, e.g. the environment's ``np_random``).
* `get_state` returns a snapshot (memory, session, RNG state) and `set_state`
  restores it exactly: a restored user reacts to the same page in the same way.
  That is how A/B tests build counterfactual twins and how runs resume.
* A user may be decided in a vectorised batch: `batch_behaviour` returns the
  `BatchBehaviour` it shares with other users (default None: one page at a time).
  The simulator then hands that behaviour many users' pages in one `view_pages` call,
  which must give exactly what each user's `view_page` would (reactions, state, draws).
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from .profile import UserProfile


@dataclass(frozen=True)
class SessionContext:
    """What the simulator tells a user when a session starts."""

    session: int = 0
    """Index of this session among the user's sessions."""
    round: int = 0
    """Simulation round (the population model retrains the recommender between rounds)."""
    max_pages: int | None = None
    """The page limit, if the user should know it (most users do not)."""
    text: bool = False
    """Whether reasons, feelings and interview answers should be written in words."""


@dataclass(frozen=True)
class ItemReaction:
    """One shown item: watched or not, a 1-5 rating when watched, and why (when text is on)."""

    item: int
    watched: bool
    rating: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PageReaction:
    """A user's reaction to one page: per-item reactions, a feeling, and whether they leave."""

    items: tuple[ItemReaction, ...]
    leave: bool
    feeling: str = ""
    fallbacks: int = 0
    """Decisions on this page that fell back to the statistical user (an LLM answer was unusable)."""
    llm_calls: tuple[str, ...] = ()
    """Ids of the LLM calls behind this page's decisions (the LLM layer's cache keys)."""

    @property
    def n_watched(self) -> int:
        return sum(r.watched for r in self.items)

    @property
    def ratings(self) -> list[int]:
        return [r.rating for r in self.items if r.rating is not None]


@dataclass(frozen=True)
class Interview:
    """The end-of-session interview: satisfaction 1-10 and, with text on, what they liked and missed."""

    satisfaction: int
    liked: str = ""
    missed: str = ""


class BatchBehaviour(Protocol):
    """Decides many users' pages in one vectorised call (see `SimulatedUser.batch_behaviour`)."""

    def view_pages(self, users: Sequence["SimulatedUser"], slates: Sequence[Sequence[int]]) -> list[PageReaction]:
        """Each user's reaction to its slate (slates of one length): exactly ``[u.view_page(s) for u, s in zip(users, slates)]``,
        the users' state and random draws included, whichever users share the call."""
        ...


class SimulatedUser(abc.ABC):
    """One simulated person standing in for one real user (see the module docstring)."""

    profile: UserProfile
    rng: np.random.Generator

    @abc.abstractmethod
    def start_session(self, context: SessionContext) -> None:
        """Begin a session; the page count starts at zero."""

    @abc.abstractmethod
    def view_page(self, items: Sequence[int]) -> PageReaction:
        """React to a page of items (item ids of the dataset)."""

    @abc.abstractmethod
    def interview(self) -> Interview:
        """Answer the satisfaction interview about the current (or just ended) session."""

    @abc.abstractmethod
    def end_session(self) -> None:
        """Close the session (memories are consolidated here)."""

    @abc.abstractmethod
    def watch_probabilities(self, items: Sequence[int]) -> np.ndarray:
        """Outside any session: how likely the user would watch each item, judged on its own.

        Pure (no randomness, no state change); fidelity checks and calibration use it."""

    @abc.abstractmethod
    def rating_probabilities(self, items: Sequence[int]) -> np.ndarray:
        """Outside any session: P(rating = 1..5) for each item if watched, shape ``[len(items), 5]``. Pure."""

    def batch_behaviour(self) -> BatchBehaviour | None:
        """The behaviour that may decide this user's pages together with other users', or None (the default).

        The simulator groups the users that return the same object (and show slates of one length)
        and calls its `view_pages` once per group instead of each user's `view_page`; with None it
        calls `view_page`. Whatever the answer, the user's reactions must be the same."""
        return None

    @abc.abstractmethod
    def get_state(self) -> dict[str, Any]:
        """A snapshot from which `set_state` restores this user exactly."""

    @abc.abstractmethod
    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by `get_state`."""


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A deep copy of a generator's state, for snapshots."""
    return copy.deepcopy(rng.bit_generator.state)


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = copy.deepcopy(state)


class SessionOverError(RuntimeError):
    """`view_page` was called after the user left and before a new session started."""


@dataclass
class SessionState:
    """The bookkeeping every user keeps within a session."""

    context: SessionContext = field(default_factory=SessionContext)
    active: bool = False
    pages: int = 0
    watched: list[int] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)

    def begin(self, context: SessionContext) -> None:
        self.context, self.active, self.pages = context, True, 0
        self.watched, self.ratings, self.shown = [], [], []

    def require_active(self) -> None:
        if not self.active:
            raise SessionOverError("view_page after the user left; call start_session first")

    def record(self, reaction: PageReaction) -> None:
        self.require_active()
        self.pages += 1
        for r in reaction.items:
            self.shown.append(r.item)
            if r.watched:
                self.watched.append(r.item)
                self.ratings.append(int(r.rating))
        if reaction.leave:
            self.active = False
