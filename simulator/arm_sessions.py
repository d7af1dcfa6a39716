"""An arm's sessions: each user once against one recommender, from the state every arm starts from.

`simulate_arm` runs one session per user against one arm through the session engine
(session_engine.py); the A/B test, fidelity's behaviour shape, augmentation's simulated
interactions and online prompt optimisation all use it, each with its own run label:

* every user starts from its **snapshot** (`Twins`: ``get_state`` taken when the user was built,
  from stream ``AB_TWIN``): in a paired design each user meets every arm from exactly the same
  state (profile, memory, history); in a split design each user meets one arm only;
* each arm draws its own randomness, from stream ``AB_SESSION`` (seed, arm position, user):
  twins share their state but not their luck, so an A/A test measures real noise and paired
  tests' p-values are honest (with shared draws two identical arms would give identical
  sessions and a degenerate test);
* the arm's `SlatePolicy` may explore (the A/B control's logging policy for off-policy
  estimates: ``page_epsilon``, a random ordered slate from the top ``pool``), drawing from
  stream ``AB_EXPLORE`` (seed, arm position, user);
* the first ``quotes`` users are interviewed in words, the rest in numbers only; with a store
  the sessions are committed as they end, and those already stored are skipped (resume).

`fast_statistical_sessions` is the A/A self-check's fast path: statistical users' sessions without
user objects. `records_to_frames` and `store_frames` turn sessions into the impressions and sessions
frames that metrics read.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from recarena.agents.contract import SimulatedUser
from recarena.agents.dynamics import push_watched
from recarena.agents.statistical import already_had
from recarena.simulator.data.streams import AB_EXPLORE, AB_SESSION, AB_TWIN

from .events import EventStore, SessionRecord
from .exploration import SlatePolicy
from .session_engine import Seat, SessionPlan, run_sessions
from .sessions import exclusions

UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


@dataclass
class ArmRun:
    """What one arm's sessions produced (records in memory; the store holds the same)."""

    arm: str
    records: list[SessionRecord]
    llm_usage: dict[str, float]
    seconds: float


class Twins:
    """Users built once (stream ``AB_TWIN``), with the snapshot each arm starts from."""

    def __init__(self, make_user: UserFactory, users: Sequence[int], seed: int):
        self.users: dict[int, SimulatedUser] = {}
        self.snapshots: dict[int, dict[str, Any]] = {}
        for u in users:
            user = make_user(int(u), AB_TWIN.generator(seed, user=int(u)))
            self.users[int(u)] = user
            self.snapshots[int(u)] = user.get_state()

    def fresh(self, u: int, rng: np.random.Generator) -> SimulatedUser:
        """User `u` back at its snapshot, drawing from `rng`."""
        user = self.users[u]
        user.set_state(self.snapshots[u])
        user.rng = rng
        return user


def llm_usage(llm: Any) -> dict[str, float]:
    """The LLM's accounted totals so far (empty without an LLM)."""
    if llm is None:
        return {}
    total = dataclasses.asdict(llm.accountant.total())
    return {k: float(v) for k, v in total.items()}


def simulate_arm(
    run: str, arm: str, arm_position: int, recommender: Any, twins: Twins, users: Sequence[int], *, seed: int, pages: int,
    slate_size: int, store: EventStore | None = None, policy: SlatePolicy = SlatePolicy(), quotes: int = 0, llm: Any = None,
    batch_size: int = 64, threads: int = 8, progress: Any = None, quoted: set[int] | None = None, keep_state: bool = False,
) -> ArmRun:
    """One session per user in `users` against `recommender`, labelled `run` and `arm` (see the module docstring).

    `quoted`: the users interviewed in words (default: the first `quotes` of `users`; a shard of a
    larger run passes the whole run's choice). `keep_state`: records carry each user's final state
    even without a store (a shard's driver stores them). Only ``page_epsilon`` exploration keeps
    twins comparable across arms; a policy with ``epsilon`` draws slots from the recommender's catalogue."""
    started, before = time.perf_counter(), llm_usage(llm)
    quoted = set(sorted(int(u) for u in users)[:quotes]) if quoted is None else quoted
    plan = SessionPlan(run, arm, pages, slate_size, policy, threads=threads, batch_size=batch_size,
                       n_items=int(getattr(recommender, "n_items", 0)) if policy.epsilon > 0 else 0)  # fmt: skip
    seats = [Seat(u, twins.fresh(u, AB_SESSION.generator(seed, arm=arm_position, user=u)),
                  AB_EXPLORE.generator(seed, arm=arm_position, user=u), in_words=u in quoted) for u in (int(u) for u in users)]  # fmt: skip
    records = run_sessions(plan, recommender, seats, store=store, keep_state=keep_state, progress=progress)
    after = llm_usage(llm)
    usage = {k: after[k] - before.get(k, 0.0) for k in after}
    return ArmRun(arm, records, usage, time.perf_counter() - started)


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


def store_frames(store: EventStore, run: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and sessions of run `run` in `store`, with the columns `records_to_frames` gives."""
    impressions = store.impressions(run)
    sessions = store.sessions(run)
    if len(impressions) == 0:
        return records_to_frames([])
    return impressions[list(IMPRESSION_FIELDS)].copy(), sessions[list(SESSION_FIELDS)].copy()


# ---------------------------------------------------------------------- the A/A check's fast path
def fast_statistical_sessions(kit: Any, recommender: Any, users: np.ndarray, *, pages: int, slate_size: int,
                              rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """Statistical users' sessions all at once, without user objects: the A/A self-check's fast path.

    The rules of `simulate_arm` with the kit's statistical users and the plain slate policy
    (``StatisticalBehaviour.decide`` over all users' pages together, already-had items never
    watched, the engine's slate exclusions, the behaviour's `satisfaction_scores`), drawing from
    one generator instead of one per user (no user objects, no RNG row per user), and keeping
    per-user totals only: columns ``shown``, ``watched``, ``rating_sum``, ``pages``,
    ``satisfaction`` and the per-user ``watch_rate``, ``mean_rating``."""
    behaviour, users = kit.behaviour, np.asarray(users, dtype=np.int64)
    n = len(users)
    seen = kit.preferences.seen
    shown: list[list[int]] = [[] for _ in range(n)]
    totals = {k: np.zeros(n) for k in ("shown", "watched", "rating_sum", "pages")}
    recent = behaviour.recent_of(users, [[] for _ in range(n)])  # None without dynamics
    alive = np.arange(n)
    for page in range(pages):
        if len(alive) == 0:
            break
        exclude = exclusions(recommender, users[alive].tolist(), [shown[r] for r in alive])
        items = np.asarray(recommender.recommend(users[alive], slate_size, exclude=exclude).items, dtype=np.int64)
        if (items < 0).any():
            raise ValueError("fast_statistical_sessions: the catalogue ran out of items for a full slate")
        already = already_had([seen[u] for u in users[alive].tolist()], items.tolist())
        outcome = behaviour.decide(rng, users[alive], items, np.full(len(alive), page), already,
                                   recent=recent[alive] if recent is not None else None)  # fmt: skip
        if recent is not None:  # the users' interest moves with what they watched, as the users' own pages do
            push_watched(recent, alive, items, outcome.watched)
        for r, row in zip(alive, items.tolist()):
            shown[r].extend(row)
        totals["shown"][alive] += slate_size
        totals["watched"][alive] += outcome.watched.sum(1)
        totals["rating_sum"][alive] += outcome.ratings.sum(1)
        totals["pages"][alive] += 1
        alive = alive[~outcome.leave]
    frame = pd.DataFrame(totals, index=pd.Index(users, name="user"))
    watched = frame["watched"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["watch_rate"] = watched / frame["shown"].to_numpy()
        frame["mean_rating"] = np.where(watched > 0, frame["rating_sum"].to_numpy() / np.maximum(watched, 1), np.nan)
    scores = behaviour.satisfaction_scores(frame["shown"].to_numpy(), watched, frame["rating_sum"].to_numpy())
    frame["satisfaction"] = scores.astype(np.float64)  # a float column, as the per-user metrics of the engine's sessions
    return frame
