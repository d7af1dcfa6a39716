"""The session engine of the A/B test: users meet an arm's recommender page after page.

`simulate_arm` runs one session per user against one arm:

* every user starts from its **snapshot** (``get_state`` taken when the user was built):
  in a paired design each user meets every arm from exactly the same state (profile,
  memory, history); in a split design each user meets one arm only;
* each arm draws its own randomness, from ``SeedSequence([seed, arm_position, user])``:
  twins share their state but not their luck, so an A/A test measures real noise and the
  paired tests' p-values are honest (with shared draws two identical arms would give
  identical sessions and a degenerate test);
* page after page the arm's recommender ranks ``slate_size`` items the user never had and
  was not shown earlier in the session; `show_pages` collects the reactions (statistical
  users vectorised, LLM users' calls in flight together); the user leaves or hits ``pages``;
* the control arm may **explore** for off-policy evaluation (`Exploration`): with probability
  epsilon per page it shows a uniformly random ordered slate from its top ``pool`` items
  instead of its top ``slate_size``; the logging propensities are then exact (see ope.py);
* each finished session is interviewed (in words for the first ``quotes`` users) and, when a
  store is given, committed to the event store with its arm.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from recarena.agents.contract import SessionContext, SimulatedUser
from recarena.simulator.events import EventStore, PageRecord, SessionRecord
from recarena.simulator.sessions import already_had, exclusions, show_pages

RUN = "ab"
UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


@dataclass(frozen=True)
class Exploration:
    """The control's logging policy for off-policy estimates (epsilon 0: none)."""

    epsilon: float = 0.0
    """Per page: probability of a random ordered slate from the pool instead of the top slate."""
    pool: int = 50
    """How many of the recommender's top items the random slate is drawn from."""


@dataclass
class ArmRun:
    """What one arm's sessions produced (records in memory; the store holds the same)."""

    arm: str
    records: list[SessionRecord]
    llm_usage: dict[str, float]
    seconds: float


class Twins:
    """Users built once, with the snapshot each arm starts from."""

    def __init__(self, make_user: UserFactory, users: Sequence[int], seed: int):
        self.users: dict[int, SimulatedUser] = {}
        self.snapshots: dict[int, dict[str, Any]] = {}
        for u in users:
            user = make_user(int(u), np.random.default_rng(np.random.SeedSequence([seed, 2**20, int(u)])))
            self.users[int(u)] = user
            self.snapshots[int(u)] = user.get_state()

    def fresh(self, u: int, rng: np.random.Generator) -> SimulatedUser:
        user = self.users[u]
        user.set_state(self.snapshots[u])
        user.rng = rng
        return user


def _usage(llm: Any) -> dict[str, float]:
    if llm is None:
        return {}
    total = dataclasses.asdict(llm.accountant.total())
    return {k: float(v) for k, v in total.items()}


def _slates(recommender: Any, users: list[int], shown: dict[int, list[int]], slate_size: int, exploration: Exploration,
            explore_rngs: dict[int, np.random.Generator]) -> list[list[int]]:
    ids = np.asarray(users, dtype=np.int64)
    exclude = exclusions(recommender, users, [shown[u] for u in users])
    depth = max(slate_size, exploration.pool) if exploration.epsilon > 0 else slate_size
    top = np.asarray(recommender.recommend(ids, depth, exclude=exclude).items)
    slates = []
    for u, row in zip(users, top):
        row = row[row >= 0]
        if exploration.epsilon > 0 and explore_rngs[u].random() < exploration.epsilon and len(row) >= slate_size:
            row = explore_rngs[u].permutation(row)[:slate_size]
        slates.append([int(i) for i in row[:slate_size]])
    return slates


def simulate_arm(
    arm: str, arm_position: int, recommender: Any, twins: Twins, users: Sequence[int], *, seed: int, pages: int, slate_size: int,
    store: EventStore | None = None, exploration: Exploration = Exploration(), quotes: int = 0, llm: Any = None,
    batch_size: int = 64, threads: int = 8, progress: Any = None, quoted: set[int] | None = None, keep_state: bool = False,
) -> ArmRun:
    """One session per user in `users` against `recommender` (see the module docstring).

    `quoted`: the users interviewed in words (default: the first `quotes` of `users`; a shard of a
    larger run passes the whole run's choice). `keep_state`: records carry each user's final state
    even without a store (a shard's driver stores them)."""
    started, before = time.perf_counter(), _usage(llm)
    done = store.completed_sessions(RUN, arm) if store is not None else set()
    todo = [int(u) for u in users if (0, int(u)) not in done]
    quoted = set(sorted(int(u) for u in users)[:quotes]) if quoted is None else quoted
    records: list[SessionRecord] = []
    if progress is not None and len(todo) < len(users):
        progress.update(len(users) - len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        people = {u: twins.fresh(u, np.random.default_rng(np.random.SeedSequence([seed, arm_position, u]))) for u in batch}
        explore_rngs = {u: np.random.default_rng(np.random.SeedSequence([seed, 7_777, arm_position, u])) for u in batch}
        for user in people.values():
            user.start_session(SessionContext(session=0, round=0, max_pages=None, text=False))
        shown: dict[int, list[int]] = {u: [] for u in batch}
        logged: dict[int, list[PageRecord]] = {u: [] for u in batch}
        alive = list(batch)
        for page in range(pages):
            if not alive:
                break
            slates = _slates(recommender, alive, shown, slate_size, exploration, explore_rngs)
            viewing = [(u, s) for u, s in zip(alive, slates) if s]
            t0 = time.time()
            reactions = show_pages([people[u] for u, _ in viewing], [s for _, s in viewing], threads)
            t1 = time.time()
            for (u, _), reaction in zip(viewing, reactions):
                logged[u].append(PageRecord(reaction, t0, t1, 0))
                shown[u].extend(r.item for r in reaction.items)
            viewed, still = {u for u, _ in viewing}, []
            for u in alive:
                left = bool(logged[u] and logged[u][-1].reaction.leave)
                if left or page == pages - 1 or u not in viewed:
                    records.append(_finish(arm, u, people[u], logged[u], left, u in quoted, store, keep_state))
                    if progress is not None:
                        progress.update(1)
                else:
                    still.append(u)
            alive = still
    after = _usage(llm)
    usage = {k: after[k] - before.get(k, 0.0) for k in after}
    return ArmRun(arm, records, usage, time.perf_counter() - started)


def _finish(arm: str, u: int, user: SimulatedUser, pages: list[PageRecord], left: bool, in_words: bool, store: EventStore | None,
            keep_state: bool = False) -> SessionRecord:  # fmt: skip
    interview = None
    if pages:
        if in_words:  # a few interviews in words make the report's quotes; the rest are numbers only (cheap)
            user.session.context = dataclasses.replace(user.session.context, text=True)  # type: ignore[attr-defined]
        interview = user.interview()
    user.end_session()
    record = SessionRecord(RUN, arm, 0, u, 0, pages, left, interview, user.get_state() if store is not None or keep_state else None)
    if store is not None:
        store.record_session(record)
    return record


# ---------------------------------------------------------------------- frames
IMPRESSION_FIELDS = ("arm", "user", "page", "position", "item", "watched", "rating")
SESSION_FIELDS = ("arm", "user", "pages", "watched", "left_site", "satisfaction", "liked", "missed")


def records_to_frames(records: Sequence[SessionRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and sessions of in-memory records, with the columns `store_frames` gives."""
    rows, sessions = [], []
    for rec in records:
        for page, p in enumerate(rec.pages):
            for position, r in enumerate(p.reaction.items):
                rows.append((rec.arm, rec.user, page, position, r.item, r.watched, r.rating))
        iv = rec.interview
        sessions.append((rec.arm, rec.user, len(rec.pages), sum(p.reaction.n_watched for p in rec.pages), int(rec.left),
                         iv.satisfaction if iv else None, iv.liked if iv else None, iv.missed if iv else None))  # fmt: skip
    impressions = pd.DataFrame(rows, columns=list(IMPRESSION_FIELDS))
    return impressions.astype({"watched": bool}), pd.DataFrame(sessions, columns=list(SESSION_FIELDS))


def store_frames(store: EventStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and sessions of the A/B run in `store`."""
    impressions = store.impressions(RUN)
    sessions = store.sessions(RUN)
    if len(impressions) == 0:
        return records_to_frames([])
    return impressions[list(IMPRESSION_FIELDS)].copy(), sessions[list(SESSION_FIELDS)].copy()


def fast_statistical_sessions(kit: Any, recommender: Any, users: np.ndarray, *, pages: int, slate_size: int,
                              rng: np.random.Generator) -> pd.DataFrame:
    """Statistical users' sessions all at once, without user objects: the A/A self-check's fast path.

    The same rules as `simulate_arm` with statistical users (`StatisticalBehaviour.decide` over
    all users' pages together, already-had items never watched, the slate exclusions and the
    already-had test of simulator/sessions.py), drawing from one generator instead of one per
    user (no user objects, no RNG row per user), and keeping per-user totals only: columns ``shown``, ``watched``,
    ``rating_sum``, ``pages``, ``satisfaction`` and the per-user ``watch_rate``, ``mean_rating``."""
    behaviour, users = kit.behaviour, np.asarray(users, dtype=np.int64)
    n = len(users)
    seen = kit.preferences.seen
    shown = [[] for _ in range(n)]
    totals = {k: np.zeros(n) for k in ("shown", "watched", "rating_sum", "pages")}
    alive = np.arange(n)
    for page in range(pages):
        if len(alive) == 0:
            break
        exclude = exclusions(recommender, users[alive].tolist(), [shown[r] for r in alive])
        items = np.asarray(recommender.recommend(users[alive], slate_size, exclude=exclude).items, dtype=np.int64)
        if (items < 0).any():
            raise ValueError("fast_statistical_sessions: the catalogue ran out of items for a full slate")
        already = already_had([seen[u] for u in users[alive].tolist()], items.tolist())
        outcome = behaviour.decide(rng, users[alive], items, np.full(len(alive), page), already)
        for r, row in zip(alive, items.tolist()):
            shown[r].extend(row)
        totals["shown"][alive] += slate_size
        totals["watched"][alive] += outcome.watched.sum(1)
        totals["rating_sum"][alive] += outcome.ratings.sum(1)
        totals["pages"][alive] += 1
        alive = alive[~outcome.leave]
    frame = pd.DataFrame(totals, index=pd.Index(users, name="user"))
    c = behaviour.config
    watched = frame["watched"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["watch_rate"] = watched / frame["shown"].to_numpy()
        frame["mean_rating"] = np.where(watched > 0, frame["rating_sum"].to_numpy() / np.maximum(watched, 1), np.nan)
    mean_for_score = np.where(watched > 0, frame["mean_rating"].to_numpy(), 2.0)
    score = c.satisfaction_rating * (mean_for_score - 3.0) + c.satisfaction_watch * (frame["watch_rate"].to_numpy() - c.satisfaction_watch_centre)
    frame["satisfaction"] = np.clip(np.round(1 + 9 / (1 + np.exp(-score))), 1, 10)
    return frame
