"""`RecArenaEnv`: a Gymnasium environment in which one episode is one simulated user's session.

    env = gymnasium.make("recarena/MovieLens100K-v0", slate_size=10, max_pages=5)
    obs, info = env.reset(seed=0)                     # samples a user (or options={"user": 42})
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

* observation (`spaces.Dict`): ``user`` (the user's index), ``history`` (the last
  ``history_length`` items the user had, oldest first, padded with -1 in front),
  ``page`` (pages shown so far), and the previous page's ``last_items`` (-1 where
  nothing was shown), ``last_watched`` (0/1) and ``last_ratings`` (0 = not watched).
* action: a slate of ``slate_size`` distinct item indices (`SlateSpace`, a `MultiDiscrete`
  whose ``sample`` draws without replacement and whose ``contains`` rejects duplicates).
* reward (``EnvConfig.reward``): ``"watches"`` per page, ``"ratings"`` (sum of the page's
  ratings), or ``"satisfaction"`` (the end-of-session interview's 1-10, paid on the last step).
* ``terminated`` when the user leaves; ``truncated`` at ``max_pages`` (a time limit, never
  ``terminated``). ``info["reactions"]`` holds each item's reaction and reason text.
* a duplicate or out-of-range item: `InvalidSlateError` by default; with
  ``invalid_slate="penalty"`` the invalid entries are dropped, the rest is shown, and
  ``invalid_penalty`` is added to the reward per invalid entry.

All randomness comes from ``self.np_random``: it is the simulated user's ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces

from recarena.agents.contract import Interview, PageReaction, SessionContext, SimulatedUser
from recarena.agents.kit import UserKit
from recarena.simulator.data import Dataset

UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


class InvalidSlateError(ValueError):
    """A slate held a duplicate or an out-of-range item (and the env was configured to refuse it)."""


@dataclass(frozen=True)
class EnvConfig:
    """How an episode (one user's session) runs."""

    slate_size: int = 10
    """Items per page (the action's length)."""
    max_pages: int = 5
    """Pages after which the episode is truncated."""
    history_length: int = 20
    """How many of the user's most recent items the observation shows."""
    reward: Literal["watches", "ratings", "satisfaction"] = "watches"
    """Per page: number watched, or sum of ratings; or the interview's satisfaction at the end."""
    invalid_slate: Literal["error", "penalty"] = "error"
    """What a duplicate or out-of-range item does: raise, or get dropped at a penalty."""
    invalid_penalty: float = -1.0
    """Reward added per invalid entry when ``invalid_slate="penalty"``."""
    text: bool = False
    """Ask users for reasons and feelings in words (LLM users write them; costly)."""
    interview: bool = True
    """Interview the user when the episode ends (``info["interview"]``); always on for the satisfaction reward."""
    users: tuple[int, ...] | None = None
    """The users `reset` samples from (default: every user)."""
    reaction_info: bool = True
    """Put each item's reaction (a dict per item) in ``info["reactions"]``. The observation's ``last_items``,
    ``last_watched`` and ``last_ratings`` hold the same items, watches and ratings; without text, turning this
    off saves a vector env most of its per-item Python."""

    def validate(self) -> None:
        if self.slate_size < 1 or self.max_pages < 1 or self.history_length < 1:
            raise ValueError(f"EnvConfig: slate_size, max_pages and history_length must be >= 1, got {self}")
        if self.reward not in ("watches", "ratings", "satisfaction"):
            raise ValueError(f"EnvConfig.reward must be watches, ratings or satisfaction, got {self.reward!r}")
        if self.invalid_slate not in ("error", "penalty"):
            raise ValueError(f"EnvConfig.invalid_slate must be error or penalty, got {self.invalid_slate!r}")


class SlateSpace(spaces.MultiDiscrete):
    """`slate_size` distinct items out of `n_items` (per row, with `batch`): a `MultiDiscrete` that samples
    without replacement and whose `contains` rejects a slate with a repeated item."""

    def __init__(self, n_items: int, slate_size: int, batch: int | None = None, seed: int | np.random.Generator | None = None):
        if slate_size > n_items:
            raise ValueError(f"slate_size {slate_size} exceeds the catalogue's {n_items} items")
        shape = (slate_size,) if batch is None else (batch, slate_size)
        super().__init__(np.full(shape, n_items, dtype=np.int64), seed=seed)
        self.n_items, self.slate_size, self.batch = n_items, slate_size, batch

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        rows = 1 if self.batch is None else self.batch
        # Random keys, argsort: each row a uniform draw without replacement, all rows at once.
        slates = np.argsort(self.np_random.random((rows, self.n_items)), axis=1)[:, : self.slate_size]
        return slates.reshape(self.shape).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        if not super().contains(x):
            return False
        rows = np.sort(np.asarray(x).reshape(-1, self.slate_size), axis=1)
        return not (rows[:, 1:] == rows[:, :-1]).any()

    def __repr__(self) -> str:
        return f"SlateSpace(n_items={self.n_items}, slate_size={self.slate_size}, batch={self.batch})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SlateSpace) and super().__eq__(other)


def user_histories(dataset: Dataset) -> list[np.ndarray]:
    """Each user's items in time order."""
    return dataset.user_histories()


def observation_space(n_users: int, n_items: int, config: EnvConfig) -> spaces.Dict:
    k, n = config.slate_size, config.history_length
    return spaces.Dict(
        {
            "user": spaces.Discrete(n_users),
            "history": spaces.Box(-1, n_items - 1, shape=(n,), dtype=np.int64),
            "page": spaces.Discrete(config.max_pages + 1),
            "last_items": spaces.Box(-1, n_items - 1, shape=(k,), dtype=np.int64),
            "last_watched": spaces.MultiBinary(k),
            "last_ratings": spaces.Box(0, 5, shape=(k,), dtype=np.int64),
        }
    )


def check_slate(action: Any, n_items: int, slate_size: int) -> tuple[list[int], np.ndarray]:
    """The valid items of `action` in order, and a mask of its entries that are duplicates or out of range."""
    slate = np.asarray(action).reshape(-1)
    if slate.shape != (slate_size,) or not np.issubdtype(slate.dtype, np.integer):
        raise InvalidSlateError(f"slate: expected {slate_size} integer item ids, got shape {slate.shape} dtype {slate.dtype}")
    invalid = (slate < 0) | (slate >= n_items)
    seen: set[int] = set()
    for k, item in enumerate(slate.tolist()):
        if not invalid[k]:
            invalid[k] = item in seen
            seen.add(item)
    return [int(i) for i, bad in zip(slate.tolist(), invalid) if not bad], invalid


def describe_invalid(slate: np.ndarray, invalid: np.ndarray, n_items: int) -> str:
    bad = [int(x) for x in np.asarray(slate).reshape(-1)[invalid]]
    return f"slate holds {int(invalid.sum())} duplicate or out-of-range item(s) {bad} (valid ids 0..{n_items - 1}, each once)"


def observation_rows(config: EnvConfig, n: int | None = None) -> dict[str, np.ndarray]:
    """Arrays for the array-valued parts of the observation (``[n, ...]`` with `n`): what trackers write into."""
    lead = () if n is None else (n,)
    k, h = config.slate_size, config.history_length
    return {
        "history": np.full((*lead, h), -1, np.int64),
        "last_items": np.full((*lead, k), -1, np.int64),
        "last_watched": np.zeros((*lead, k), np.int8),
        "last_ratings": np.zeros((*lead, k), np.int64),
    }


def write_history(row: np.ndarray, history: Sequence[int] | np.ndarray) -> None:
    """`row` = the last ``len(row)`` items of `history` (time order), padded with -1 in front."""
    recent = history[-len(row) :]
    row[: len(row) - len(recent)] = -1
    row[len(row) - len(recent) :] = recent


class SessionTracker:
    """One user's session seen from the environment: observation and reward bookkeeping (shared with the vector env).

    The observation's arrays live in `rows` (views into the vector env's batch arrays, or the
    tracker's own), so a vector env reads every sub-environment's observation without copying rows."""

    def __init__(self, user_id: int, user: SimulatedUser, history: np.ndarray, config: EnvConfig, rows: dict[str, np.ndarray] | None = None):
        self.user_id, self.user, self.config = user_id, user, config
        self.history = list(history[-config.history_length :].tolist())
        self.page = 0
        self.rows = observation_rows(config) if rows is None else rows
        self.last_items, self.last_watched, self.last_ratings = self.rows["last_items"], self.rows["last_watched"], self.rows["last_ratings"]
        self.last_items[:] = -1
        self.last_watched[:] = 0
        self.last_ratings[:] = 0
        self._write_history()
        self.interview: Interview | None = None
        self.done = False
        user.start_session(SessionContext(session=0, max_pages=None, text=config.text))

    def _write_history(self) -> None:
        write_history(self.rows["history"], self.history)

    def observation(self) -> dict[str, Any]:
        return {
            "user": np.int64(self.user_id),
            "history": self.rows["history"].copy(),
            "page": np.int64(self.page),
            "last_items": self.last_items.copy(),
            "last_watched": self.last_watched.copy(),
            "last_ratings": self.last_ratings.copy(),
        }

    def record(self, reaction: PageReaction | None, invalid: np.ndarray | None, write_rows: bool = True) -> tuple[float, bool, bool, dict[str, Any]]:
        """Book a page's reaction (None: nothing valid was shown); returns reward, terminated, truncated, info.

        `invalid` masks the slate's dropped entries (None: every entry was valid). ``write_rows=False``:
        the caller has already written ``last_items``/``last_watched``/``last_ratings`` (the vector env
        writes all sub-environments' rows at once)."""
        c = self.config
        self.page += 1
        reactions = list(reaction.items) if reaction is not None else []
        n_invalid = int(invalid.sum()) if invalid is not None else 0
        if write_rows:
            positions = range(len(reactions)) if not n_invalid else np.flatnonzero(~invalid).tolist()
            self.last_items[:] = -1
            self.last_watched[:] = 0
            self.last_ratings[:] = 0
            for k, r in zip(positions, reactions):
                self.last_items[k] = r.item
                if r.watched:
                    self.last_watched[k], self.last_ratings[k] = 1, r.rating
        chosen = [r for r in reactions if r.watched]
        watches, rating_sum = len(chosen), sum(r.rating for r in chosen)
        if chosen:
            self.history.extend(r.item for r in chosen)
            self._write_history()
        terminated = bool(reaction is not None and reaction.leave)
        truncated = not terminated and self.page >= c.max_pages
        reward = float(watches) if c.reward == "watches" else float(rating_sum) if c.reward == "ratings" else 0.0
        reward += c.invalid_penalty * n_invalid if c.invalid_slate == "penalty" else 0.0
        info: dict[str, Any] = {
            "user": self.user_id,
            "page": self.page,
            "feeling": reaction.feeling if reaction is not None else "",
            "fallbacks": reaction.fallbacks if reaction is not None else 0,
            "invalid": n_invalid,
        }
        if c.reaction_info:
            # plain dicts built by hand: dataclasses.asdict deep-copies and cost most of a batched step
            info["reactions"] = [{"item": r.item, "watched": r.watched, "rating": r.rating, "reason": r.reason} for r in reactions]
        if terminated or truncated:
            if c.interview or c.reward == "satisfaction":
                self.interview = self.user.interview()
                info["interview"] = {"satisfaction": self.interview.satisfaction, "liked": self.interview.liked, "missed": self.interview.missed}
                if c.reward == "satisfaction":
                    reward += float(self.interview.satisfaction)
            self.user.end_session()
            self.done = True
        return reward, terminated, truncated, info


def statistical_users(kit: UserKit) -> UserFactory:
    """The default user factory: the kit's statistical users."""
    return kit.statistical_user


class RecArenaEnv(gymnasium.Env):
    """One episode = one simulated user's session (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, kit: UserKit, config: EnvConfig = EnvConfig(), make_user: UserFactory | None = None):
        config.validate()
        self.kit, self.config = kit, config
        self.make_user: UserFactory = make_user or statistical_users(kit)
        dataset = kit.history
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.histories = user_histories(dataset)
        self.candidate_users = np.arange(self.n_users) if config.users is None else np.asarray(config.users, dtype=np.int64)
        if len(self.candidate_users) == 0 or self.candidate_users.min() < 0 or self.candidate_users.max() >= self.n_users:
            raise ValueError(f"EnvConfig.users must be non-empty ids in 0..{self.n_users - 1}")
        self.observation_space = observation_space(self.n_users, self.n_items, config)
        self.action_space = SlateSpace(self.n_items, config.slate_size)
        self.tracker: SessionTracker | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "user" in options and options["user"] is not None:
            user_id = int(options["user"])
            if not 0 <= user_id < self.n_users:
                raise ValueError(f"reset options['user']: {user_id} is outside 0..{self.n_users - 1}")
        else:
            user_id = int(self.np_random.choice(self.candidate_users))
        user = self.make_user(user_id, self.np_random)
        self.tracker = SessionTracker(user_id, user, self.histories[user_id], self.config)
        return self.tracker.observation(), {"user": user_id, "profile": user.profile.describe()}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.tracker is None or self.tracker.done:
            raise RuntimeError("step() before reset() or after the episode ended; call reset()")
        items, invalid = check_slate(action, self.n_items, self.config.slate_size)
        if invalid.any() and self.config.invalid_slate == "error":
            raise InvalidSlateError(describe_invalid(action, invalid, self.n_items))
        reaction = self.tracker.user.view_page(items) if items else None
        reward, terminated, truncated, info = self.tracker.record(reaction, invalid)
        return self.tracker.observation(), reward, terminated, truncated, info


def register_envs() -> None:
    """Register recarena/MovieLens100K-v0 (statistical users) and recarena/MovieLens100K-LLM-v0 (idempotent).

    Runs when this module is imported (``import recarena.simulator.env``), never when the package or
    its data is: data, users and recommenders stay free of gymnasium. Entry points are strings, so
    registering imports nothing heavy (see registration.py)."""
    here = "recarena.simulator.registration"
    for env_id, entry, nondeterministic in (
        ("recarena/MovieLens100K-v0", "make_movielens100k", False),
        ("recarena/MovieLens100K-LLM-v0", "make_movielens100k_llm", True),  # an uncached LLM answer may vary
    ):
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"{here}:{entry}",
                vector_entry_point=f"{here}:{entry}_vector",
                nondeterministic=nondeterministic,
            )


register_envs()
