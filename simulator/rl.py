"""Reinforcement learning in the arena: the slate env as a scoring problem that a policy-gradient agent learns.

    pool = CandidatePool(kit.history, base_recommender)     # fitted on the same training data as the users' kit
    env = SlateScoringEnv(RecArenaEnv(kit, EnvConfig(slate_size=10, max_pages=5)), pool)
    obs, info = env.reset(seed=0)                            # obs: Box(7,) float32
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())   # action: Box(5,) in [-1, 1]

A slate of distinct item ids is an awkward action for Stable-Baselines3, which takes Box, Discrete and
MultiDiscrete actions: a MultiDiscrete of item ids ignores that a slate repeats no item, and a policy over
the whole catalogue per slot is a far larger problem than a few CPU minutes suit. So the agent here reranks a base
recommender, one weight per feature of the candidate items:

* **candidates**: per user, the base recommender's top ``candidates`` items that it does not know the user
  had (``Recommender.known_items``), the ones the session engine's plain policy draws pages from (when the
  base ranks fewer, the most popular other items follow, so that every page is full);
* **features** of each candidate (`FEATURES`), each standardised over the user's candidates: the base
  score, popularity and popularity near the user's last training interaction, genre match with the
  user's training history, and similarity to the user's recent items (item vectors from the training
  interactions; "recent" is the observation's ``history``, which gains this session's watches);
* **action**: a weight per feature in [-1, 1] (``Box``), times ``max_weight``. A candidate's score is its
  standardised base score plus the weighted features, and the slate is the top ``slate_size`` of the
  candidates not shown earlier in the session, best first. **The zero action is the base recommender's
  own slate** (tested against the session engine's plain policy), so an agent starts from the
  recommender it reranks: SB3's PPO starts with a near-zero mean action;
* **observation** (`OBSERVATIONS`): the page, the last page's watches and ratings, the session's
  watches, and three numbers about the user from the training data (Box, float32, in [-5, 5]).

Everything the scorer reads comes from the training data the recommender was fitted on and from the
env's observation, never from the simulated users' model of taste. A `CandidatePool` computes what a base
recommender's candidates need once; a `CandidateScorer` does the per-session work on rows of arrays over it,
so one class serves the single env (`SlateScoringEnv`), the batched Stable-Baselines3 vector env
(sb3_vec_env.py) and `session_watches`, the paired evaluation of any policy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from recarena.agents.kit import UserKit
from recarena.recommenders import Recommender
from recarena.simulator.data import Dataset

from .env import EnvConfig, RecArenaEnv
from .vector_env import RecArenaVectorEnv

FEATURES = ("base", "popularity", "popularity_now", "genre_match", "recent_similarity")
"""The candidate features an action weighs, in the action's order."""
OBSERVATIONS = ("page", "last_watches", "last_rating", "session_watches", "user_activity", "user_mainstream", "recent_focus")
"""The observation's entries, in order."""
OBSERVATION_BOUND = 5.0
TIME_KEY = 2**34
"""Item ids times this plus seconds since the first interaction sort interactions by item, then time."""

Policy = Callable[[np.ndarray], np.ndarray]
"""Observations ``[n, len(OBSERVATIONS)]`` to actions ``[n, len(FEATURES)]`` (a trained agent's ``predict``, say)."""


@dataclass(frozen=True)
class ScoringConfig:
    """How candidates are chosen and scored (see the module docstring)."""

    candidates: int = 100
    """The base recommender's top items per user that the agent reranks (at least slate_size x max_pages)."""
    max_weight: float = 3.0
    """An action entry of 1 weighs its feature this much against the base score's 1."""
    recent: int = 10
    """How many of the observation's latest history items the recent-similarity feature reads."""
    recent_decay: float = 0.7
    """Weight of a recent item per step back in time (the newest weighs 1)."""
    embedding_dim: int = 32
    """Dimensions of the item vectors (truncated SVD of the training interactions)."""
    window_days: float = 15.0
    """Popularity near the user's time counts interactions within this many days of the user's last one."""

    def validate(self, env: EnvConfig) -> None:
        """ValueError naming the setting when the candidates cannot fill every page or a setting is impossible."""
        if self.candidates < env.slate_size * env.max_pages:
            raise ValueError(f"ScoringConfig.candidates ({self.candidates}) must be at least slate_size x max_pages "
                             f"({env.slate_size * env.max_pages}), so that every page is full")  # fmt: skip
        if self.max_weight <= 0 or self.recent < 1 or not 0 < self.recent_decay <= 1 or self.embedding_dim < 1 or self.window_days <= 0:
            raise ValueError(f"ScoringConfig: max_weight, recent, embedding_dim, window_days > 0 and recent_decay in (0, 1], got {self}")


def scoring_spaces() -> tuple[spaces.Box, spaces.Box]:
    """The observation and action spaces of every scoring env."""
    observation = spaces.Box(-OBSERVATION_BOUND, OBSERVATION_BOUND, shape=(len(OBSERVATIONS),), dtype=np.float32)
    return observation, spaces.Box(-1.0, 1.0, shape=(len(FEATURES),), dtype=np.float32)


def standardise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """(x - mean) / sd along `axis` (0 where the sd is 0), clipped to the observation bound."""
    centred = x - x.mean(axis=axis, keepdims=True)
    sd = centred.std(axis=axis, keepdims=True)
    return np.clip(np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 1e-12), -OBSERVATION_BOUND, OBSERVATION_BOUND)


def item_vectors(history: Dataset, dim: int) -> np.ndarray:
    """``[n_items, dim]`` unit item vectors from a truncated SVD of the training item-user matrix (deterministic:
    ARPACK from a fixed start vector); items that co-occur in users' histories point alike."""
    frame = history.interactions
    matrix = csr_matrix((np.ones(len(frame)), (frame["item"].to_numpy(), frame["user"].to_numpy())), shape=(history.n_items, history.n_users))
    matrix.data[:] = 1.0  # a repeated pair counts once
    dim = max(1, min(dim, min(matrix.shape) - 1))
    left, singular, _ = svds(matrix, k=dim, v0=np.full(min(matrix.shape), 1.0 / np.sqrt(min(matrix.shape))))
    vectors = left * np.sqrt(singular)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class CandidatePool:
    """What one base recommender's candidates need, computed once and shared by every scorer (and env) over it:
    item vectors, popularity, the users' training statistics and, per user on first use, the candidates and
    their static features. Everything comes from `history`, the training data the recommender was fitted on."""

    def __init__(self, history: Dataset, recommender: Recommender, config: ScoringConfig = ScoringConfig()):
        if (recommender.n_users, recommender.n_items) != (history.n_users, history.n_items):
            raise ValueError(f"the recommender was fitted on {recommender.n_users} users x {recommender.n_items} items, "
                             f"the users' history has {history.n_users} x {history.n_items}: fit it on the same training data")  # fmt: skip
        if config.candidates > history.n_items:
            raise ValueError(f"ScoringConfig.candidates ({config.candidates}) exceeds the catalogue's {history.n_items} items")
        self.history, self.recommender, self.config = history, recommender, config
        frame = history.interactions
        items, users = frame["item"].to_numpy(np.int64), frame["user"].to_numpy(np.int64)
        self.vectors = item_vectors(history, config.embedding_dim)
        self.log_popularity = np.log1p(np.bincount(items, minlength=history.n_items)).astype(np.float64)
        self.popular = np.argsort(-self.log_popularity, kind="stable")
        global_pop = standardise(self.log_popularity)
        counts = np.bincount(users, minlength=history.n_users)
        self.user_activity = np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
        self.user_mainstream = np.clip(np.bincount(users, weights=global_pop[items], minlength=history.n_users) / np.maximum(counts, 1),
                                       -OBSERVATION_BOUND, OBSERVATION_BOUND)  # fmt: skip
        self.genres = history.genre_matrix()
        self.user_genres = np.zeros((history.n_users, self.genres.shape[1]))
        np.add.at(self.user_genres, users, self.genres[items])
        timestamps = frame["timestamp"].to_numpy(np.int64)
        self.time_origin = int(timestamps.min()) if len(timestamps) else 0
        self.user_time = np.full(history.n_users, self.time_origin, np.int64)  # each user's last training interaction
        np.maximum.at(self.user_time, users, timestamps)
        self.item_time_keys = np.sort(items * TIME_KEY + (timestamps - self.time_origin))
        self._per_user: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # user -> (candidates [C], static features [C, 4])

    def of(self, users: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``[n, candidates]`` item ids (the base's order) and ``[n, candidates, 4]`` static features of `users`."""
        self._load(users)
        rows = [self._per_user[int(u)] for u in users]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    # ------------------------------------------------------------------ per user, once
    def _load(self, users: Sequence[int]) -> None:
        """Candidates and static features of the `users` not loaded yet, in one recommender call."""
        missing = sorted({int(u) for u in users} - set(self._per_user))
        if not missing:
            return
        k = self.config.candidates
        known = self.recommender.known_items(missing)
        top = self.recommender.recommend(np.asarray(missing, np.int64), k, exclude=known)
        for row, user in enumerate(missing):
            items, scores = np.asarray(top.items[row], np.int64), np.asarray(top.scores[row], np.float64)
            ranked = items >= 0
            items, scores = items[ranked], scores[ranked]
            finite = np.isfinite(scores)
            if not finite.all():  # a model may score an item -inf; it still ranks where the model put it
                scores = np.where(finite, scores, (scores[finite].min() if finite.any() else 0.0) - 1.0 - np.arange(len(scores)) * 1e-3)
            if len(items) < k:  # the base ranks too few: the most popular other items follow, the user's own last
                items, scores = self._filled(items, scores, known[row])
            profile, mass = self.user_genres[user], self.genres[items]
            genre = (mass @ profile) / np.maximum(np.linalg.norm(mass, axis=1) * np.linalg.norm(profile), 1e-12)  # cosine
            static = np.stack([standardise(scores), standardise(self.log_popularity[items]),
                               standardise(np.log1p(self._counts_near(items, int(self.user_time[user])))), standardise(genre)], axis=1)  # fmt: skip
            self._per_user[user] = (items, static)

    def _filled(self, items: np.ndarray, scores: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`items` (the base's ranking, shorter than ``candidates``) followed by the most popular items it left out,
        those the user is not known to have had first; their base scores fall below the lowest ranked one, in order.
        Known items fill only a user who has had nearly the whole catalogue: never watched again, they keep a
        page full and valid."""
        is_known = np.zeros(len(self.log_popularity), bool)
        is_known[np.asarray(known, np.int64)] = True
        left = np.ones(len(self.log_popularity), bool)
        left[items] = False
        by_popularity = self.popular[left[self.popular]]
        extra = np.concatenate([by_popularity[~is_known[by_popularity]], by_popularity[is_known[by_popularity]]])[: self.config.candidates - len(items)]
        lowest = scores.min() if len(scores) else 0.0
        return np.concatenate([items, extra]), np.concatenate([scores, lowest - 1e-3 * np.arange(1, len(extra) + 1)])

    def _counts_near(self, items: np.ndarray, time: int) -> np.ndarray:
        """Training interactions of each of `items` within ``window_days`` of `time`."""
        window = int(self.config.window_days * 86_400)
        low, high = max(time - window - self.time_origin, 0), time + window - self.time_origin
        keys = self.item_time_keys
        return np.searchsorted(keys, items * TIME_KEY + high, side="right") - np.searchsorted(keys, items * TIME_KEY + low, side="left")



class CandidateScorer:
    """Observations and slates for rows of sessions over a `CandidatePool` (see the module docstring).

    A row is a sub-environment: `start` loads its user's candidates, `observe` reads the env's
    observation of it, `slates` turns actions into its next page."""

    def __init__(self, pool: CandidatePool, env_config: EnvConfig, rows: int = 1):
        pool.config.validate(env_config)
        self.pool, self.env_config, self.config, self.rows = pool, env_config, pool.config, rows
        c, n = self.config.candidates, len(FEATURES)
        self.candidates = np.zeros((rows, c), np.int64)
        self.static = np.zeros((rows, c, n - 1))
        self.shown = np.zeros((rows, c), bool)
        self.users = np.zeros(rows, np.int64)
        self.candidate_vectors = np.zeros((rows, c, pool.vectors.shape[1]))
        self.history = np.full((rows, env_config.history_length), -1, np.int64)
        self.profile = np.zeros((rows, pool.vectors.shape[1]))  # the recent items' decayed mean vector, per row
        self.observation = np.zeros((rows, len(OBSERVATIONS)), np.float32)
        self.session_watches = np.zeros(rows, np.int64)

    def start(self, rows: Sequence[int], users: Sequence[int]) -> None:
        """Rows `rows` begin sessions of `users`: their candidates are loaded and none is shown yet."""
        rows = np.asarray(rows, np.int64)
        if not len(rows):
            return
        self.candidates[rows], self.static[rows] = self.pool.of(users)
        self.candidate_vectors[rows] = self.pool.vectors[self.candidates[rows]]
        self.shown[rows] = False
        self.users[rows] = users
        self.session_watches[rows] = 0

    def observe(self, rows: Sequence[int], obs: dict[str, np.ndarray]) -> np.ndarray:
        """The scoring observation ``[len(rows), len(OBSERVATIONS)]`` of rows `rows` from the env's batched `obs`
        (the same rows, in order); remembers their history for the next slates."""
        rows = np.asarray(rows, np.int64)
        c = self.env_config
        watched = np.asarray(obs["last_watched"], np.int64)
        ratings = np.asarray(obs["last_ratings"], np.float64)
        page = np.asarray(obs["page"], np.int64)
        self.session_watches[rows] = np.where(page == 0, 0, self.session_watches[rows] + watched.sum(1))
        self.history[rows] = obs["history"]
        n_watched = watched.sum(1)
        self.profile[rows] = profile = self._recent_profile(rows)
        focus = np.linalg.norm(profile, axis=1)
        out = np.stack([
            page / c.max_pages,
            n_watched / c.slate_size,
            np.divide(ratings.sum(1), 5.0 * n_watched, out=np.zeros(len(rows)), where=n_watched > 0),
            self.session_watches[rows] / (c.slate_size * c.max_pages),
            self.pool.user_activity[self.users[rows]],
            self.pool.user_mainstream[self.users[rows]],
            focus,
        ], axis=1)  # fmt: skip
        self.observation[rows] = np.clip(out, -OBSERVATION_BOUND, OBSERVATION_BOUND)
        return self.observation[rows].copy()

    def _recent_profile(self, rows: np.ndarray) -> np.ndarray:
        """Per row, the decayed mean of its recent items' vectors ``[n, dim]``; its length, in [0, 1], says how alike they are."""
        recent = self.history[rows][:, -self.config.recent :]
        valid = recent >= 0
        age = (recent.shape[1] - 1) - np.arange(recent.shape[1])
        weights = np.where(valid, self.config.recent_decay ** age, 0.0)
        total = weights.sum(1, keepdims=True)
        profile = np.einsum("nr,nrd->nd", weights, self.pool.vectors[np.maximum(recent, 0)])
        return np.divide(profile, total, out=np.zeros_like(profile), where=total > 0)

    def features(self, rows: Sequence[int]) -> np.ndarray:
        """``[n, candidates, len(FEATURES)]``: every candidate's standardised features for rows `rows` at their last
        observation (`observe`)."""
        rows = np.asarray(rows, np.int64)
        similarity = np.einsum("ncd,nd->nc", self.candidate_vectors[rows], self.profile[rows])
        return np.concatenate([self.static[rows], standardise(similarity)[..., None]], axis=2)

    def scores(self, rows: Sequence[int], actions: np.ndarray) -> np.ndarray:
        """``[n, candidates]``: standardised base score + max_weight x action . features; -inf where already shown."""
        rows = np.asarray(rows, np.int64)
        weights = np.clip(np.asarray(actions, np.float64).reshape(len(rows), len(FEATURES)), -1.0, 1.0) * self.config.max_weight
        features = self.features(rows)
        scores = features[..., 0] + np.einsum("ncf,nf->nc", features, weights)
        return np.where(self.shown[rows], -np.inf, scores)

    def slates(self, rows: Sequence[int], actions: np.ndarray) -> np.ndarray:
        """``[n, slate_size]`` item ids: the top-scored candidates not shown yet, best first (ties: the base's
        order), which then count as shown."""
        rows = np.asarray(rows, np.int64)
        order = np.argsort(-self.scores(rows, actions), axis=1, kind="stable")[:, : self.env_config.slate_size]
        self.shown[rows[:, None], order] = True
        return self.candidates[rows[:, None], order]


def batched(obs: dict[str, Any]) -> dict[str, np.ndarray]:
    """One env's observation as a batch of one row."""
    return {key: np.asarray(value)[None, ...] for key, value in obs.items()}


class SlateScoringEnv(gymnasium.Env):
    """A `RecArenaEnv` whose action is a weight per candidate feature and whose observation is a Box (see the
    module docstring): what Stable-Baselines3 and Gymnasium's checkers accept. ``info["slate"]`` is the page shown.

    An env of its own rather than a ``gymnasium.Wrapper`` (whose spaces and checks are its inner env's): all
    its randomness is the inner env's, seeded by `reset`, which is also the simulated user's ``rng``."""

    metadata = {"render_modes": []}

    def __init__(self, env: RecArenaEnv, pool: CandidatePool):
        self.env = env
        self.scorer = CandidateScorer(pool, env.config, rows=1)
        self.observation_space, self.action_space = scoring_spaces()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self._np_random = self.env.np_random  # one generator: the inner env's, the user's
        self.scorer.start([0], [int(obs["user"])])
        return self.scorer.observe([0], batched(obs))[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        slate = self.scorer.slates([0], np.asarray(action))[0]
        obs, reward, terminated, truncated, info = self.env.step(slate)
        info["slate"] = slate
        return self.scorer.observe([0], batched(obs))[0], reward, terminated, truncated, info


def session_watches(kit: UserKit, pool: CandidatePool, env_config: EnvConfig, users: Sequence[int], seed: int,
                    policy: Policy | None = None) -> np.ndarray:  # fmt: skip
    """Watches in one session of each of `users` (``[len(users)]``) under `policy` (None: the zero action, i.e.
    the base recommender's own slates), all sessions stepped together in a `RecArenaVectorEnv`.

    User ``users[i]`` draws from the i-th child of `seed` whatever the policy, so two policies run with the
    same users and seed meet the same people with the same luck: a paired comparison (common random
    numbers). Sessions end as the env says (the user leaves, or ``max_pages``)."""
    users = [int(u) for u in users]
    env = RecArenaVectorEnv(kit, len(users), replace(env_config, users=None, interview=False, reaction_info=False))
    scorer = CandidateScorer(pool, env.config, rows=len(users))
    obs, _ = env.reset(seed=seed, options={"users": users})
    rows = np.arange(len(users))
    scorer.start(rows, users)
    observation = scorer.observe(rows, obs)
    watches = np.zeros(len(users))
    live = np.ones(len(users), bool)
    while live.any():
        actions = np.zeros((len(users), len(FEATURES))) if policy is None else np.asarray(policy(observation), np.float64)
        slates = scorer.candidates[:, : env.config.slate_size].copy()  # ended rows: any valid slate (the env ignores it)
        where = np.flatnonzero(live)
        slates[where] = scorer.slates(where, actions[where])
        obs, rewards, terminated, truncated, _ = env.step(slates)
        watches[where] += rewards[where]
        live &= ~(terminated | truncated)
        observation = scorer.observe(rows, obs)
    return watches
