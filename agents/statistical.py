"""The statistical user: decisions from the preference model, no LLM, vectorised over users.

For user u shown item i at position k (0-based) on page p (0-based) of a session:

* ``watch logit = preference_watch_logit(u, i) + watch_shift
  - position_decay * log(1 + k) - fatigue * p``; an item the user already had
  (in the real history the preference model saw, or earlier in the simulation)
  is never watched again.
* a watched item's rating is drawn from the ordinal rating model's P(1..5 | u, i).
* after the page, ``leave logit = leave_base[activity tier] + leave_per_page * p
  - leave_per_watch * watches - leave_per_rating * (mean rating - 3)``.
* the interview's satisfaction (1-10) is ``1 + 9 * sigmoid(satisfaction_rating *
  (mean rating - 3) + satisfaction_watch * (watch rate - satisfaction_watch_centre))``,
  with mean rating 2 when nothing was watched.

`StatisticalBehaviour` holds these rules over arrays (many users' pages at once);
`StatisticalUser` is one person behind the `SimulatedUser` contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .contract import (
    Interview, ItemReaction, PageReaction, SessionContext, SessionState, SimulatedUser, restore_rng, rng_state,
)  # fmt: skip
from .preferences import PreferenceModel
from .profile import TIERS, UserProfile


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

    def __init__(self, preferences: PreferenceModel, activity_tiers: np.ndarray, config: BehaviourConfig = BehaviourConfig()):
        self.preferences = preferences
        self.activity_tiers = np.asarray(activity_tiers)
        self.config = config
        self.leave_base = np.asarray(config.leave_base)

    def watch_logits(self, users: np.ndarray, items: np.ndarray, pages: np.ndarray) -> np.ndarray:
        """Watch logits for ``items [n, slate]`` shown to ``users [n]`` on ``pages [n]``."""
        c = self.config
        positions = np.log1p(np.arange(items.shape[1]))[None, :]
        logits = self.preferences.watch_logits(users, items) + c.watch_shift
        return logits - c.position_decay * positions - c.fatigue * np.asarray(pages)[:, None]

    def decide(
        self,
        rng: np.random.Generator,
        users: np.ndarray,
        items: np.ndarray,
        pages: np.ndarray,
        already_had: np.ndarray | None = None,
        watch_logits: np.ndarray | None = None,
        rating_probabilities: np.ndarray | None = None,
    ) -> PageOutcome:
        """Draw watches, ratings and leaving for a batch of pages.

        `already_had` (``[n, slate]`` booleans) marks items never to be watched again.
        `watch_logits` and `rating_probabilities` override the statistical ones (the
        hybrid user passes its blended values); draws are the same either way.
        """
        users, items, pages = np.asarray(users), np.asarray(items), np.asarray(pages)
        logits = self.watch_logits(users, items, pages) if watch_logits is None else watch_logits
        watched, probability = self.draw_watches(rng, logits, already_had)
        levels = self.preferences.rating_probabilities(users, items) if rating_probabilities is None else rating_probabilities
        ratings = np.where(watched, self.draw_ratings(rng, levels), 0)
        leave = self.draw_leave(rng, users, pages, watched, ratings)
        return PageOutcome(watched=watched, ratings=ratings, leave=leave, watch_probability=probability)

    # The three draws, in the order every user kind makes them (so snapshots replay exactly).
    @staticmethod
    def draw_watches(rng: np.random.Generator, logits: np.ndarray, already_had: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        probability = sigmoid(logits)
        if already_had is not None:
            probability = np.where(already_had, 0.0, probability)
        return rng.random(logits.shape) < probability, probability

    @staticmethod
    def draw_ratings(rng: np.random.Generator, levels: np.ndarray) -> np.ndarray:
        """A rating 1..5 per row of `levels` (P(1..5) in the last axis)."""
        draws = rng.random(levels.shape[:-1])[..., None]
        return 1 + (draws > np.cumsum(levels, axis=-1)[..., :-1]).sum(-1)

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
        c = self.config
        mean_rating = float(np.mean(ratings)) if len(ratings) else 2.0
        watch_rate = len(ratings) / n_shown if n_shown else 0.0
        score = c.satisfaction_rating * (mean_rating - 3.0) + c.satisfaction_watch * (watch_rate - c.satisfaction_watch_centre)
        return int(np.clip(round(1 + 9 * float(sigmoid(np.array(score)))), 1, 10))


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
        self.session.require_active()
        items_arr = np.asarray(items, dtype=np.int64)[None, :]
        already = np.array([[i in self.had for i in items]], dtype=bool)
        outcome = self.behaviour.decide(self.rng, np.array([self.profile.user]), items_arr, np.array([self.session.pages]), already)
        return self.record_page(items, outcome.watched[0], outcome.ratings[0], bool(outcome.leave[0]))

    def interview(self) -> Interview:
        satisfaction = self.behaviour.satisfaction(len(self.session.shown), self.session.ratings)
        if not self.session.context.text:
            return Interview(satisfaction=satisfaction)
        liked = f"I watched {len(self.session.watched)} of {len(self.session.shown)} suggestions."
        missed = "More " + ", ".join(self.profile.liked_genres) + "." if self.profile.liked_genres else ""
        return Interview(satisfaction=satisfaction, liked=liked, missed=missed)

    def end_session(self) -> None:
        self.session.active = False

    def watch_probabilities(self, items: Sequence[int]) -> np.ndarray:
        items_arr = np.asarray(items, dtype=np.int64)[None, :]
        logits = self.behaviour.watch_logits(np.array([self.profile.user]), items_arr, np.zeros(1))[0]
        # Judged alone at the top of a page: no position effect beyond the first slot.
        logits = logits + self.behaviour.config.position_decay * np.log1p(np.arange(len(items)))
        return sigmoid(logits)

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
        reactions = []
        for k, item in enumerate(items):
            reason = reasons[k] if reasons is not None else (self._template_reason(int(item), bool(watched[k])) if text else None)
            reactions.append(ItemReaction(int(item), bool(watched[k]), int(ratings[k]) if watched[k] else None, reason if text else None))
            if watched[k]:
                self.had.add(int(item))
                self.simulated_watches.append(int(item))
        n = int(np.sum(watched))
        page = PageReaction(items=tuple(reactions), leave=leave, feeling=feeling or _feeling(n, ratings[watched]), fallbacks=fallbacks, llm_calls=tuple(llm_calls))
        self.session.record(page)
        return page

    def _template_reason(self, item: int, watched: bool) -> str:
        genres = list(self.item_genres[item]) if self.item_genres is not None else []
        liked = [g for g in genres if g in self.profile.liked_genres]
        disliked = [g for g in genres if g in self.profile.disliked_genres]
        if watched:
            return f"I like {', '.join(liked)}." if liked else "It looked worth a try."
        return f"I don't enjoy {', '.join(disliked)}." if disliked else "Not what I'm in the mood for."


def _feeling(n_watched: int, ratings: np.ndarray) -> str:
    if n_watched == 0:
        return "bored"
    mean = float(np.mean(ratings))
    return "delighted" if mean >= 4.5 else "pleased" if mean >= 3.5 else "lukewarm" if mean >= 2.5 else "disappointed"


def _copy_session(session: SessionState) -> SessionState:
    return SessionState(session.context, session.active, session.pages, list(session.watched), list(session.ratings), list(session.shown))
