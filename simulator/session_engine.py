"""The session engine: users meet a recommender page after page. The one page loop of recarena.

    plan = SessionPlan(run="ab", arm="pop", pages=5, slate_size=10)
    records = run_sessions(plan, recommender, [Seat(u, user, explore_rng) for u, user, explore_rng in ...])

Whatever shows pages to users calls `run_sessions`: the arms of an A/B test (`arm_sessions.simulate_arm`,
which fidelity, augmentation and online prompt optimisation use too) and the rounds of a population
(`population_shards.round_sessions`, in this process or in Ray tasks). The caller decides who the users
are and how they are seeded; the engine runs their sessions, ``batch_size`` at a time, page after page:

1. the recommender ranks and the plan's `SlatePolicy` turns the ranking into each user's slate
   (`build_slates`, exploration.py): never an item the recommender knows the user had
   (``Recommender.known_items``), nor one shown earlier in the session, nor, with ``exclude_watched``,
   one the user watched in an earlier session (`Seat.watched`); exploring draws come from the seat's
   ``explore_rng``; a recommender that sets ``takes_session_pages`` (a recommender service) is also told
   the session's pages so far (`session_pages`);
2. `show_pages` (sessions.py) collects the reactions: users that share a batch behaviour are decided
   together over arrays, the others' LLM calls are in flight together;
3. a user who left, reached ``pages`` or got no slate (the catalogue ran out) ends its session: the
   interview (with ``interview``; in words for a seat ``in_words``, whatever the session's text),
   `end_session`, and a `SessionRecord` with the run label, arm, round, the seat's session count and
   each page's simulated time ``sim_time``; the record carries the user's snapshot when stored or
   with ``keep_state``.

With a store, each record is committed as its session ends, and seats whose session the store already
completed (same run, arm, round and user) are skipped: a killed run resumes where it stopped. ``progress``
(a tqdm-like bar) advances by one per session, skipped ones included.

Nothing here draws a random number itself: each user draws from its own ``rng`` and each slate policy
from its seat's generator, so a session's events do not depend on which users share its batch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recarena.agents.contract import ItemReaction, SessionContext, SimulatedUser

from .events import EventStore, PageRecord, SessionRecord
from .exploration import SlatePolicy, build_slates
from .sessions import show_pages


@dataclass(frozen=True)
class SessionPlan:
    """What the sessions of one `run_sessions` call share (see the module docstring)."""

    run: str
    """The run's label in the records and the event store (the caller's: ``"ab"``, a population's run name, ...)."""
    arm: str
    """The arm's label in the records and the event store."""
    pages: int
    """A session ends after this many pages at the latest."""
    slate_size: int
    """Items per page."""
    policy: SlatePolicy = SlatePolicy()
    """How the recommender's ranking becomes a slate (exploration included)."""
    round: int = 0
    """The round the sessions belong to (a population's day; 0 elsewhere)."""
    sim_time: int = 0
    """The simulated time stamped on every page (the timestamps a recommender later learns from)."""
    text: bool = False
    """Whether the sessions ask users for reasons and feelings in words."""
    interview: bool = True
    """Interview each user after a session with at least one page."""
    exclude_watched: bool = False
    """Never show a seat's `Seat.watched` items (what the user watched in earlier sessions)."""
    threads: int = 8
    """Threads for the pages of users decided one by one (their LLM calls go out together)."""
    batch_size: int = 64
    """Sessions stepped together."""
    n_items: int = 0
    """The catalogue's size: the items an epsilon-greedy slot draws from (needed when ``policy.epsilon > 0``)."""
    genre_vectors: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Items' unit genre vectors for MMR (`genre_unit_vectors`; needed when ``policy.mmr > 0``)."""

    def validate(self) -> None:
        """ValueError naming the field when a setting is impossible."""
        self.policy.validate()
        for name, value in (("pages", self.pages), ("slate_size", self.slate_size), ("batch_size", self.batch_size)):
            if value < 1:
                raise ValueError(f"{name}: must be at least 1, got {value}")
        if self.policy.epsilon > 0 and self.n_items < 1:
            raise ValueError(f"n_items: the epsilon-greedy policy draws from the catalogue; give its size, got {self.n_items}")
        if self.policy.mmr > 0 and self.genre_vectors is None:
            raise ValueError("genre_vectors: MMR re-ranking needs the items' genre vectors")


@dataclass
class Seat:
    """One session to run: the user (its ``rng`` seeded by the caller) and what is particular to this session."""

    user_id: int
    user: SimulatedUser
    explore_rng: np.random.Generator
    """The slate policy's draws for this session (unused by a policy that does not explore)."""
    session: int = 0
    """How many sessions the user had before this one."""
    watched: Collection[int] = ()
    """Items the user watched in earlier sessions (excluded with ``SessionPlan.exclude_watched``)."""
    in_words: bool = False
    """Interview this user in words (the report's quotes), even when the session asked for no text."""


def run_sessions(plan: SessionPlan, recommender: Any, seats: Sequence[Seat], *, store: EventStore | None = None,
                 keep_state: bool = False, progress: Any = None) -> list[SessionRecord]:  # fmt: skip
    """Each seat's session against `recommender` (see the module docstring); the records in the order the sessions ended."""
    plan.validate()
    done = store.completed_sessions(plan.run, plan.arm) if store is not None else set()
    todo = [seat for seat in seats if (plan.round, seat.user_id) not in done] if done else list(seats)
    if progress is not None and len(todo) < len(seats):
        progress.update(len(seats) - len(todo))
    records: list[SessionRecord] = []
    for start in range(0, len(todo), plan.batch_size):
        records.extend(_batch(plan, recommender, todo[start : start + plan.batch_size], store, keep_state, progress))
    return records


def _batch(plan: SessionPlan, recommender: Any, seats: list[Seat], store: EventStore | None, keep_state: bool,
           progress: Any) -> list[SessionRecord]:  # fmt: skip
    for seat in seats:
        seat.user.start_session(SessionContext(session=seat.session, round=plan.round, max_pages=None, text=plan.text))
    logged: list[list[PageRecord]] = [[] for _ in seats]
    shown: list[list[int]] = [[] for _ in seats]
    records: list[SessionRecord] = []
    alive = list(range(len(seats)))
    for page in range(plan.pages):
        if not alive:
            break
        also = [seats[k].watched for k in alive] if plan.exclude_watched else None
        pages = [session_pages(logged[k]) for k in alive] if getattr(recommender, "takes_session_pages", False) else None
        slates = build_slates(recommender, plan.policy, [seats[k].user_id for k in alive], [shown[k] for k in alive], plan.slate_size,
                              [seats[k].explore_rng for k in alive], also=also, n_items=plan.n_items, genre_vectors=plan.genre_vectors,
                              pages=pages)  # fmt: skip
        viewing = [k for k, slate in zip(alive, slates) if slate]
        started = time.time()
        reactions = show_pages([seats[k].user for k in viewing], [slate for slate in slates if slate], plan.threads)
        finished = time.time()
        for k, reaction in zip(viewing, reactions):
            logged[k].append(PageRecord(reaction, started, finished, plan.sim_time))
            shown[k].extend(x.item for x in reaction.items)
        viewed, still = set(viewing), []
        for k in alive:
            left = bool(logged[k] and logged[k][-1].reaction.leave)
            if left or page == plan.pages - 1 or k not in viewed:
                records.append(_finish(plan, seats[k], logged[k], left, store, keep_state))
                if progress is not None:
                    progress.update(1)
            else:
                still.append(k)
        alive = still
    return records


def session_pages(pages: Sequence[PageRecord]) -> list[list[ItemReaction]]:
    """A session's pages so far as a recommender service reads them: per page, each item shown with whether it was
    watched and its rating (``item``, ``watched``, ``rating``: the shape of `recarena.recommenders.service.ShownItem`)."""
    return [list(page.reaction.items) for page in pages]


def _finish(plan: SessionPlan, seat: Seat, pages: list[PageRecord], left: bool, store: EventStore | None, keep_state: bool) -> SessionRecord:
    user, interview = seat.user, None
    if plan.interview and pages:
        if seat.in_words:  # a few interviews in words make a report's quotes; the rest are numbers only (cheap)
            user.session.context = dataclasses.replace(user.session.context, text=True)  # type: ignore[attr-defined]
        interview = user.interview()
    user.end_session()
    state = user.get_state() if store is not None or keep_state else None
    record = SessionRecord(plan.run, plan.arm, plan.round, seat.user_id, seat.session, pages, left, interview, state)
    if store is not None:
        store.record_session(record)
    return record
