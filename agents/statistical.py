"""The statistical user: decisions from the preference model, no LLM, vectorised over users.

For user u shown item i at position k (0-based) on page p (0-based) of a session:

* ``watch logit = interest(u, i | recent) + watch_shift
  - position_decay * log(1 + k) - fatigue * p``; an item the user already had
  (in the real history the preference model saw, or earlier in the simulation)
  is never watched again. ``interest`` is the preference model's watch logit (a static
  taste) or, when the behaviour has fitted `WatchDynamics` (dynamics.py), that taste moved
  by the user's recent items (the end of its real history, then its simulated watches, so
  interest moves within a session and between rounds) and by popularity at the user's time.
* a watched item's rating is drawn from the ordinal rating model's P(1..5 | u, i).
* after the page, ``leave logit = leave_base[activity tier] + leave_per_page * p
  - leave_per_watch * watches - leave_per_rating * (mean rating - 3)``.
* the interview's satisfaction (1-10) is ``1 + 9 * sigmoid(satisfaction_rating *
  (mean rating - 3) + satisfaction_watch * (watch rate - satisfaction_watch_centre))``,
  with mean rating 2 when nothing was watched (`StatisticalBehaviour.satisfaction_scores`,
  the one definition: users' interviews, the vector env and the A/A check's fast path read it).

`StatisticalBehaviour` holds these rules over arrays (many users' pages at once) and is the
`BatchBehaviour` of its users: the simulator hands it many users' pages in one call
(`view_pages`). `StatisticalUser` is one person behind the `SimulatedUser` contract.

Random numbers: a page of ``k`` items takes ``2k + 1`` uniforms from the user's ``rng``,
in this order: k for the watches, k for the ratings (one per item, watched or not), 1 for
leaving. ``rng.random(2k + 1)`` draws exactly these, so the simulator can fill one row per
user of a ``[users, 2k + 1]`` matrix (`page_uniforms`) and decide every user's page at once
with the numbers the user would have drawn alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .contract import (
    BatchBehaviour, Interview, ItemReaction, PageReaction, SessionContext, SessionState, SimulatedUser, restore_rng, rng_state,
)  # fmt: skip
from .feelings import FEELING_BELOW, FEELINGS, feeling_of  # noqa: F401  (FEELINGS and FEELING_BELOW: re-exported)
from .preferences import PreferenceModel
from .profile import TIERS, UserProfile

if TYPE_CHECKING:
    from .dynamics import WatchDynamics


@dataclass(frozen=True)
class BehaviourConfig:
    """The knobs of the statistical rules (see the module docstring)."""

    watch_shift: float = 0.0
    """Added to every watch logit (calibration hook; the hybrid user fits its own)."""
    position_decay: float = 0.3
    """How much lower the watch logit is per log(1 + position on the page)."""
    fatigue: float = 0.15
    """How much lower the watch logit is per page already seen in the session."""
    leave_base: tuple[float, float, float] = (0.0, -1.0, -2.0)
    """Leave logit after a page with no watches, for activity tiers low, medium, high."""
    leave_per_page: float = 0.25
    """Each page already seen raises the leave logit by this."""
    leave_per_watch: float = 0.5
    """Each watch on the page lowers the leave logit by this."""
    leave_per_rating: float = 0.4
    """Each point of the page's mean rating above 3 lowers the leave logit by this."""
    satisfaction_rating: float = 1.2
    """Weight of the session's mean rating in the interview's satisfaction."""
    satisfaction_watch: float = 6.0
    """Weight of the session's watch rate in the interview's satisfaction."""
    satisfaction_watch_centre: float = 0.15
    """The watch rate that counts as neutral."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class PageOutcome:
    """Reactions of a batch of users to their pages: arrays over ``[users, slate]`` and ``[users]``."""

    watched: np.ndarray
    ratings: np.ndarray  # 0 where not watched
    leave: np.ndarray
    watch_probability: np.ndarray = field(repr=False)


class StatisticalBehaviour:
    """The statistical rules over arrays, for many users' pages at once."""

    def __init__(self, preferences: PreferenceModel, activity_tiers: np.ndarray, config: BehaviourConfig = BehaviourConfig(),
                 dynamics: WatchDynamics | None = None):  # fmt: skip
        self.preferences = preferences
        self.activity_tiers = np.asarray(activity_tiers)
        self.config = config
        self.dynamics = dynamics
        """Fitted dynamics of interest (None: the static taste alone)."""
        self.leave_base = np.asarray(config.leave_base)
        self._satisfaction: dict[tuple[int, int, int], int] = {}  # satisfaction_of's answers by session counts

    def interest_logits(self, users: np.ndarray, items: np.ndarray, recent: np.ndarray | None = None) -> np.ndarray:
        """The users' interest in ``items [n, slate]``: the watch logit before the page's position, fatigue and shift.

        `recent` (``[n, L]``, -1 pads; see `recent_of`) moves it when the behaviour has dynamics;
        None means each user's last real items."""
        taste = self.preferences.watch_logits(users, items)
        if self.dynamics is None:
            return taste
        return self.dynamics.user_logits(taste, users, items, recent)

    def recent_of(self, users: np.ndarray, watches: Sequence[Sequence[int]]) -> np.ndarray | None:
        """``[n, L]`` recent items of ``users [n]`` who made these simulated `watches` (None without dynamics)."""
        if self.dynamics is None:
            return None
        return self.dynamics.recent_after(users, watches)

    def watch_logits(self, users: np.ndarray, items: np.ndarray, pages: np.ndarray, recent: np.ndarray | None = None) -> np.ndarray:
        """Watch logits for ``items [n, slate]`` shown to ``users [n]`` on ``pages [n]`` (`recent`: see `interest_logits`)."""
        c = self.config
        positions = np.log1p(np.arange(items.shape[1]))[None, :]
        logits = self.interest_logits(users, items, recent) + c.watch_shift
        return logits - c.position_decay * positions - c.fatigue * np.asarray(pages)[:, None]

    def decide(
        self,
        rng: np.random.Generator | None,
        users: np.ndarray,
        items: np.ndarray,
        pages: np.ndarray,
        already_had: np.ndarray | None = None,
        watch_logits: np.ndarray | None = None,
        rating_probabilities: np.ndarray | None = None,
        uniforms: np.ndarray | None = None,
        recent: np.ndarray | None = None,
    ) -> PageOutcome:
        """Draw watches, ratings and leaving for a batch of pages.

        `already_had` (``[n, slate]`` booleans) marks items never to be watched again.
        `watch_logits` and `rating_probabilities` override the statistical ones (the
        hybrid user passes its blended values); draws are the same either way.
        `uniforms` (``[n, 2 * slate + 1]``, one row per user, see `page_uniforms`) replaces
        drawing from `rng`; without it the three draws come from `rng` over the whole batch.
        `recent` is the users' recent items (`recent_of`; None: their last real items).
        """
        users, items, pages = np.asarray(users), np.asarray(items), np.asarray(pages)
        k = items.shape[1]
        logits = self.watch_logits(users, items, pages, recent) if watch_logits is None else watch_logits
        levels = self.preferences.rating_probabilities(users, items) if rating_probabilities is None else rating_probabilities
        if uniforms is None:
            assert rng is not None, "decide needs an rng or uniforms"
            watched, probability = self.draw_watches(rng, logits, already_had)
            ratings = np.where(watched, self.draw_ratings(rng, levels), 0)
            leave = self.draw_leave(rng, users, pages, watched, ratings)
        else:
            watched, probability = watches_from(uniforms[:, :k], logits, already_had)
            ratings = np.where(watched, ratings_from(uniforms[:, k : 2 * k], levels), 0)
            leave = uniforms[:, 2 * k] < self.leave_probability(users, pages, watched, ratings)
        return PageOutcome(watched=watched, ratings=ratings, leave=leave, watch_probability=probability)

    # The three draws, in the order every user kind makes them (so snapshots replay exactly).
    @staticmethod
    def draw_watches(rng: np.random.Generator, logits: np.ndarray, already_had: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return watches_from(rng.random(logits.shape), logits, already_had)

    @staticmethod
    def draw_ratings(rng: np.random.Generator, levels: np.ndarray) -> np.ndarray:
        """A rating 1..5 per row of `levels` (P(1..5) in the last axis)."""
        return ratings_from(rng.random(levels.shape[:-1]), levels)

    def draw_leave(self, rng: np.random.Generator, users: np.ndarray, pages: np.ndarray, watched: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return rng.random(len(users)) < self.leave_probability(users, pages, watched, ratings)

    def leave_probability(self, users: np.ndarray, pages: np.ndarray, watched: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        c = self.config
        n_watched = watched.sum(1)
        mean_rating = np.where(n_watched > 0, ratings.sum(1) / np.maximum(n_watched, 1), 3.0)
        logit = (
            self.leave_base[self.activity_tiers[users]]
            + c.leave_per_page * np.asarray(pages)
            - c.leave_per_watch * n_watched
            - c.leave_per_rating * (mean_rating - 3.0)
        )
        return sigmoid(logit)

    def satisfaction(self, n_shown: int, ratings: Sequence[int]) -> int:
        """The interview's 1-10 after a session that showed `n_shown` items and had these `ratings` (of its watches)."""
        return self.satisfaction_of(n_shown, len(ratings), sum(ratings))

    def satisfaction_of(self, n_shown: int, n_watched: int, rating_sum: int) -> int:
        """`satisfaction` from counts: `n_watched` watches whose ratings sum to `rating_sum` (one session's `satisfaction_scores`)."""
        key = (n_shown, n_watched, rating_sum)
        answer = self._satisfaction.get(key)
        if answer is None:
            # Memoised: sessions take few distinct counts, and numpy's per-call overhead would be most of an interview's cost.
            answer = self._satisfaction[key] = int(self.satisfaction_scores(np.array([n_shown]), np.array([n_watched]), np.array([rating_sum]))[0])
        return answer

    def satisfaction_scores(self, n_shown: np.ndarray, n_watched: np.ndarray, rating_sum: np.ndarray) -> np.ndarray:
        """The interview's 1-10 of each session (the formula in the module docstring), as integers: sessions that
        showed `n_shown` items and had `n_watched` watches whose ratings sum to `rating_sum` (arrays alike)."""
        c = self.config
        shown, watched = np.asarray(n_shown, dtype=np.float64), np.asarray(n_watched, dtype=np.float64)
        mean_rating = np.where(watched > 0, np.asarray(rating_sum, dtype=np.float64) / np.maximum(watched, 1), 2.0)
        watch_rate = np.where(shown > 0, watched / np.maximum(shown, 1), 0.0)
        score = c.satisfaction_rating * (mean_rating - 3.0) + c.satisfaction_watch * (watch_rate - c.satisfaction_watch_centre)
        with np.errstate(over="ignore"):  # a very low score: exp overflows to inf, the share to 0
            share = 1.0 / (1.0 + np.exp(-score))
        return np.clip(np.round(1 + 9 * share), 1, 10).astype(np.int64)

    def view_pages(self, users: Sequence["StatisticalUser"], slates: Sequence[Sequence[int]]) -> list[PageReaction]:
        """Each user's reaction to its slate (slates of one length), decided together over arrays: exactly what
        ``users[r].view_page(slates[r])`` gives, the users' bookkeeping and random draws included (`BatchBehaviour`).

        Each row takes its uniforms from its own user's ``rng`` (`page_uniforms`), so the result does
        not depend on which users share the call."""
        for user in users:
            user.session.require_active()
        items = np.array(slates, dtype=np.int64)
        rows = items.tolist()
        # Lists, not generators: a single user's page (view_page) comes through here too, and every microsecond shows.
        ids = np.array([u.profile.user for u in users], dtype=np.int64)
        pages = np.array([u.session.pages for u in users], dtype=np.int64)
        already = already_had([u.had for u in users], rows)
        uniforms = page_uniforms([u.rng for u in users], items.shape[1])
        recent = self.recent_of(ids, [u.simulated_watches for u in users])
        outcome = self.decide(None, ids, items, pages, already, uniforms=uniforms, recent=recent)
        watched, ratings, leave = outcome.watched.tolist(), outcome.ratings.tolist(), outcome.leave.tolist()
        # `record_page` is the users' own bookkeeping (history, session, reasons): shared so both paths agree.
        return [user.record_page(rows[r], watched[r], ratings[r], leave[r]) for r, user in enumerate(users)]


def already_had(had: Sequence[set[int]], rows: Sequence[Sequence[int]]) -> np.ndarray:
    """``[len(rows), slate]`` booleans: item ``rows[r][k]`` is in ``had[r]`` (never to be watched again)."""
    return np.array([[i in h for i in row] for h, row in zip(had, rows)], dtype=bool).reshape(len(rows), -1)


def page_uniforms(generators: Sequence[np.random.Generator], slate_size: int) -> np.ndarray:
    """``[len(generators), 2 * slate_size + 1]`` uniforms, row r from ``generators[r]``: what each user's
    `view_page` would draw on a page of `slate_size` items (see the module docstring)."""
    uniforms = np.empty((len(generators), 2 * slate_size + 1))
    for row, rng in zip(uniforms, generators):
        rng.random(out=row)
    return uniforms


def watches_from(uniforms: np.ndarray, logits: np.ndarray, already_had: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Watched where the uniform falls under the watch probability (0 for items already had)."""
    probability = sigmoid(logits)
    if already_had is not None:
        probability = np.where(already_had, 0.0, probability)
    return uniforms < probability, probability


def ratings_from(uniforms: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """A rating 1..5 per uniform, by inverting the cumulative P(1..5) in the last axis of `levels`."""
    return 1 + (uniforms[..., None] > np.cumsum(levels, axis=-1)[..., :-1]).sum(-1)


def activity_tier_array(profiles: Sequence[UserProfile]) -> np.ndarray:
    return np.array([TIERS.index(p.activity_tier) for p in profiles])


class StatisticalUser(SimulatedUser):
    """One statistical user behind the `SimulatedUser` contract."""

    def __init__(self, profile: UserProfile, behaviour: StatisticalBehaviour, rng: np.random.Generator, item_genres: Sequence[Sequence[str]] | None = None):
        self.profile = profile
        self.behaviour = behaviour
        self.rng = rng
        self.item_genres = item_genres
        self.session = SessionState()
        self.had: set[int] = set(behaviour.preferences.seen[profile.user])
        self.simulated_watches: list[int] = []

    # ------------------------------------------------------------------ contract
    def start_session(self, context: SessionContext) -> None:
        self.session.begin(context)

    def view_page(self, items: Sequence[int]) -> PageReaction:
        return self.behaviour.view_pages([self], [items])[0]  # alone or in a batch, one way to decide

    def interview(self) -> Interview:
        satisfaction = self.behaviour.satisfaction(len(self.session.shown), self.session.ratings)
        if not self.session.context.text:
            return Interview(satisfaction=satisfaction)
        liked = f"I watched {len(self.session.watched)} of {len(self.session.shown)} suggestions."
        missed = "More " + ", ".join(self.profile.liked_genres) + "." if self.profile.liked_genres else ""
        return Interview(satisfaction=satisfaction, liked=liked, missed=missed)

    def end_session(self) -> None:
        self.session.active = False

    def batch_behaviour(self) -> BatchBehaviour | None:
        """The shared `StatisticalBehaviour`, which decides many such users' pages at once. A subclass that
        decides its pages otherwise (its own `view_page`, as the LLM users do) is not batched unless it says so."""
        return self.behaviour if type(self).view_page is StatisticalUser.view_page else None

    def watch_probabilities(self, items: Sequence[int]) -> np.ndarray:
        items_arr = np.asarray(items, dtype=np.int64)[None, :]
        logits = self.behaviour.watch_logits(np.array([self.profile.user]), items_arr, np.zeros(1), self.recent())[0]
        # Judged alone at the top of a page: no position effect beyond the first slot.
        logits = logits + self.behaviour.config.position_decay * np.log1p(np.arange(len(items)))
        return sigmoid(logits)

    def recent(self) -> np.ndarray | None:
        """``[1, L]``: this user's recent items for the behaviour's dynamics (None without dynamics)."""
        return self.behaviour.recent_of(np.array([self.profile.user]), [self.simulated_watches])

    def rating_probabilities(self, items: Sequence[int]) -> np.ndarray:
        return self.behaviour.preferences.rating_probabilities(np.full(len(items), self.profile.user), np.asarray(items, dtype=np.int64))

    def get_state(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "session": _copy_session(self.session),
            "had": sorted(self.had),
            "simulated_watches": list(self.simulated_watches),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
        self.session = _copy_session(state["session"])
        self.had = set(state["had"])
        self.simulated_watches = list(state["simulated_watches"])

    # ------------------------------------------------------------------ shared with the LLM and hybrid users and the batched simulator
    def record_page(self, items: Sequence[int], watched: np.ndarray, ratings: np.ndarray, leave: bool, reasons: Sequence[str | None] | None = None, feeling: str | None = None, fallbacks: int = 0, llm_calls: Sequence[str] = ()) -> PageReaction:
        """Turn decided arrays into the page's reaction and book it (history, session).

        Every user kind and the simulator's batched path end a page here, so they agree exactly."""
        text = self.session.context.text
        items = [int(i) for i in items]
        watched = [bool(w) for w in (watched.tolist() if isinstance(watched, np.ndarray) else watched)]
        ratings = [int(r) for r in (ratings.tolist() if isinstance(ratings, np.ndarray) else ratings)]
        if text:
            reactions = tuple(
                ItemReaction(item, w, r if w else None, reasons[k] if reasons is not None else self._template_reason(item, w))
                for k, (item, w, r) in enumerate(zip(items, watched, ratings))
            )
        else:
            known = _PLAIN_REACTIONS  # looked up inline: the call per item showed in profiles
            reactions = tuple([
                known.get((item, w, r if w else None)) or _plain_reaction(item, w, r if w else None) for item, w, r in zip(items, watched, ratings)
            ])
        chosen = [r for w, r in zip(watched, ratings) if w]
        for item, w in zip(items, watched):
            if w:
                self.had.add(item)
                self.simulated_watches.append(item)
        feeling = feeling or _feeling(len(chosen), chosen)
        page = PageReaction(items=reactions, leave=bool(leave), feeling=feeling, fallbacks=fallbacks, llm_calls=tuple(llm_calls))
        self.session.record(page)
        return page

    def _template_reason(self, item: int, watched: bool) -> str:
        genres = list(self.item_genres[item]) if self.item_genres is not None else []
        liked = [g for g in genres if g in self.profile.liked_genres]
        disliked = [g for g in genres if g in self.profile.disliked_genres]
        if watched:
            return f"I like {', '.join(liked)}." if liked else "It looked worth a try."
        return f"I don't enjoy {', '.join(disliked)}." if disliked else "Not what I'm in the mood for."


@dataclass(frozen=True)
class StatisticalFactory:
    """Builds statistical users from profiles, behaviour and genres alone: a user factory that travels light
    (to Ray workers, say), where shipping a whole kit with its interaction history would only cost time."""

    profiles: Sequence[UserProfile]
    behaviour: StatisticalBehaviour
    item_genres: Sequence[Sequence[str]]

    def __call__(self, user: int, rng: np.random.Generator) -> StatisticalUser:
        return StatisticalUser(self.profiles[user], self.behaviour, rng, self.item_genres)


_PLAIN_REACTIONS: dict[tuple[int, bool, int | None], ItemReaction] = {}


def _plain_reaction(item: int, watched: bool, rating: int | None) -> ItemReaction:
    """The text-free reaction to `item`. Reactions are immutable, so one object serves every page that
    shows it alike: building thousands of frozen dataclasses per step was most of a page's cost."""
    key = (item, watched, rating)
    reaction = _PLAIN_REACTIONS.get(key)
    if reaction is None:
        reaction = _PLAIN_REACTIONS[key] = ItemReaction(item, watched, rating, None)
    return reaction


def _feeling(n_watched: int, ratings: Sequence[int]) -> str:
    return feeling_of(n_watched, sum(ratings))


def _copy_session(session: SessionState) -> SessionState:
    return SessionState(session.context, session.active, session.pages, list(session.watched), list(session.ratings), list(session.shown))
