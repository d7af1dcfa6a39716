"""The vector env's array path: the kit's statistical users' sessions held in arrays, no user objects.

`RecArenaVectorEnv` takes this path when its users are the kit's statistical users
(no ``make_user``) and ``text`` is off. It gives exactly what the object path gives
(a `StatisticalUser` per sub-environment behind a `SessionTracker`): the same
observations, rewards, flags and infos, step for step, for the same seed
(tests/simulator/test_vector_statistical.py holds the two paths equal). Row i draws its
page's ``2k + 1`` uniforms from sub-environment i's generator, which is the user's
``rng`` in the object path, and the decision is the same ``StatisticalBehaviour.decide``.

What the user objects kept per session is kept here per sub-environment:

* ``had [num_envs, n_items]``: the items the user had (real history plus this
  session's watches), never watched again;
* ``user_pages``: pages the user saw (an all-invalid slate shows nothing and is no page
  for the user, though the env counts it);
* ``n_shown``, ``n_watched``, ``rating_sum``: what the interview's satisfaction needs;
* ``recent [num_envs, L]`` (when the users have dynamics): the user's recent items, its last
  real ones then this session's watches, as `StatisticalBehaviour.recent_of` gives them.

The per-step cost left is a few array operations per step plus, for the sub-environments
whose users watched something, their history row; ``info["reactions"]`` (a list of dicts
per sub-environment) is the one per-item Python left, and ``EnvConfig.reaction_info=False``
drops it (the observation's ``last_items``, ``last_watched`` and ``last_ratings`` hold the
same items, watches and ratings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from recarena.agents.kit import UserKit
from recarena.agents.dynamics import push_watched
from recarena.agents.feelings import FEELING_BELOW, FEELINGS
from recarena.agents.statistical import page_uniforms

from .env import EnvConfig, write_history

if TYPE_CHECKING:
    from .vector_env import VectorInfos


class StatisticalSessions:
    """Every sub-environment's session with a statistical user, in arrays (see the module docstring)."""

    def __init__(self, kit: UserKit, config: EnvConfig, rows: dict[str, np.ndarray], num_envs: int, histories: Sequence[np.ndarray]):
        self.behaviour = kit.behaviour
        self.seen = kit.behaviour.preferences.seen
        self.config, self.rows = config, rows
        self.had = np.zeros((num_envs, kit.history.n_items), bool)
        self.user_pages = np.zeros(num_envs, np.int64)
        self.n_shown = np.zeros(num_envs, np.int64)
        self.n_watched = np.zeros(num_envs, np.int64)
        self.rating_sum = np.zeros(num_envs, np.int64)
        self.histories = histories
        dynamics = kit.behaviour.dynamics
        self.recent = None if dynamics is None else np.full((num_envs, dynamics.start_recent.shape[1]), -1, np.int64)
        self._seen_arrays: dict[int, np.ndarray] = {}  # per user, built on first use
        self._history_rows: dict[int, np.ndarray] = {}

    def start(self, envs: Sequence[int], users: Sequence[int]) -> None:
        """Sub-environments `envs` start sessions of `users`."""
        if not len(envs):
            return
        envs = np.asarray(envs, np.int64)
        seen = [self._seen_items(u) for u in users]
        self.had[envs] = False
        self.had[np.repeat(envs, [len(s) for s in seen]), np.concatenate(seen)] = True
        self.user_pages[envs] = self.n_shown[envs] = self.n_watched[envs] = self.rating_sum[envs] = 0
        self.rows["last_items"][envs] = -1
        self.rows["last_watched"][envs] = 0
        self.rows["last_ratings"][envs] = 0
        self.rows["history"][envs] = np.stack([self._history_row(u) for u in users])
        if self.recent is not None:
            self.recent[envs] = self.behaviour.dynamics.start_recent[np.asarray(users, np.int64)]

    def _seen_items(self, user: int) -> np.ndarray:
        items = self._seen_arrays.get(user)
        if items is None:
            items = self._seen_arrays[user] = np.fromiter(self.seen[user], np.int64, len(self.seen[user]))
        return items

    def _history_row(self, user: int) -> np.ndarray:
        row = self._history_rows.get(user)
        if row is None:
            row = self._history_rows[user] = np.empty(self.config.history_length, np.int64)
            write_history(row, self.histories[user])
        return row

    def show(
        self,
        envs: Sequence[int],
        slates: Sequence[list[int]],
        masks: Sequence[np.ndarray | None],
        users: np.ndarray,
        pages: np.ndarray,
        generators: Sequence[np.random.Generator],
        infos: "VectorInfos",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Show `slates` (valid items) in sub-environments `envs`; `masks` marks each action's dropped entries.

        Advances `pages` (the env's page counters) and returns rewards, terminated and truncated
        over `envs`; the step's infos go into `infos`."""
        c, n = self.config, len(envs)
        envs_arr = np.asarray(envs, np.int64)
        page_watches = np.zeros(n, np.int64)
        page_ratings = np.zeros(n, np.int64)
        leave = np.zeros(n, bool)
        lengths = np.fromiter(map(len, slates), np.int64, n)
        pages_shown: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, items, watched, ratings) per slate length
        for length in np.unique(lengths[lengths > 0]).tolist():
            rows = np.flatnonzero(lengths == length)
            where = envs_arr[rows]
            items = np.array([slates[r] for r in rows.tolist()], np.int64) if len(rows) < n else np.array(slates, np.int64)
            already = self.had[where[:, None], items]
            uniforms = page_uniforms([generators[i] for i in where.tolist()], length)
            recent = self.recent[where] if self.recent is not None else None
            out = self.behaviour.decide(None, users[where], items, self.user_pages[where], already, uniforms=uniforms, recent=recent)
            watched, ratings = out.watched, out.ratings
            if self.recent is not None:
                push_watched(self.recent, where, items, watched)  # the user's recent items (last L, oldest first)
            self.had[where[:, None], items] |= watched
            self.user_pages[where] += 1
            self.n_shown[where] += length
            page_watches[rows] = watched.sum(1)
            page_ratings[rows] = ratings.sum(1)
            leave[rows] = out.leave
            self._write_rows(rows, where, items, watched, ratings, masks)
            push_watched(self.rows["history"], where, items, watched)  # the observation's history row
            pages_shown.append((rows, items, watched, ratings))
        for r in np.flatnonzero(lengths == 0).tolist():  # nothing valid was shown
            self.rows["last_items"][envs[r]] = -1
            self.rows["last_watched"][envs[r]] = 0
            self.rows["last_ratings"][envs[r]] = 0
        self.n_watched[envs_arr] += page_watches
        self.rating_sum[envs_arr] += page_ratings
        pages[envs_arr] += 1
        n_invalid = np.zeros(n, np.int64)
        for r, mask in enumerate(masks):
            if mask is not None:
                n_invalid[r] = int(mask.sum())
        terminated = leave
        truncated = ~terminated & (pages[envs_arr] >= c.max_pages)
        rewards = page_watches.astype(np.float64) if c.reward == "watches" else page_ratings.astype(np.float64) if c.reward == "ratings" else np.zeros(n)
        if c.invalid_slate == "penalty":
            rewards = rewards + c.invalid_penalty * n_invalid
        satisfaction: dict[int, int] = {}
        if c.interview or c.reward == "satisfaction":
            ended = np.flatnonzero(terminated | truncated)
            shown, watches, total = self.n_shown[envs_arr[ended]].tolist(), self.n_watched[envs_arr[ended]].tolist(), self.rating_sum[envs_arr[ended]].tolist()
            for r, a, b, t in zip(ended.tolist(), shown, watches, total):
                satisfaction[r] = self.behaviour.satisfaction_of(a, b, t)
                if c.reward == "satisfaction":
                    rewards[r] += float(satisfaction[r])
        self._add_infos(infos, envs_arr, users, pages, lengths > 0, pages_shown, page_watches, page_ratings, n_invalid, satisfaction)
        return rewards, terminated, truncated

    def _write_rows(self, rows: np.ndarray, where: np.ndarray, items: np.ndarray, watched: np.ndarray, ratings: np.ndarray,
                    masks: Sequence[np.ndarray | None]) -> None:  # fmt: skip
        """The observation's last page: items at their slate positions (dropped entries stay -1)."""
        if items.shape[1] == self.config.slate_size and all(masks[r] is None for r in rows.tolist()):
            self.rows["last_items"][where] = items
            self.rows["last_watched"][where] = watched
            self.rows["last_ratings"][where] = ratings
            return
        for j, r in enumerate(rows.tolist()):
            i = int(where[j])
            positions = np.arange(items.shape[1]) if masks[r] is None else np.flatnonzero(~masks[r])
            for name, values in (("last_items", items[j]), ("last_watched", watched[j]), ("last_ratings", ratings[j])):
                self.rows[name][i] = -1 if name == "last_items" else 0
                self.rows[name][i, positions] = values


    def _add_infos(self, infos: "VectorInfos", envs: np.ndarray, users: np.ndarray, pages: np.ndarray, has_page: np.ndarray, pages_shown: list,
                   page_watches: np.ndarray, page_ratings: np.ndarray, n_invalid: np.ndarray, satisfaction: dict[int, int]) -> None:  # fmt: skip
        """The infos `SessionTracker.record` would give, column by column."""
        env_list = envs.tolist()
        infos.add_column("user", env_list, users[envs])  # int64 arrays, as Python ints lay out
        infos.add_column("page", env_list, pages[envs])
        if self.config.reaction_info:
            reactions: list[list[dict]] = [[] for _ in env_list]
            for rows, items, watched, ratings in pages_shown:
                for r, i_row, w_row, r_row in zip(rows.tolist(), items.tolist(), watched.tolist(), ratings.tolist()):
                    reactions[r] = [{"item": i, "watched": w, "rating": x if w else None, "reason": None} for i, w, x in zip(i_row, w_row, r_row)]
            infos.add_column("reactions", env_list, reactions)
        infos.add_column("feeling", env_list, feelings(page_watches, page_ratings, has_page))
        infos.add_column("fallbacks", env_list, np.zeros(len(env_list), np.int64))
        infos.add_column("invalid", env_list, n_invalid)
        if satisfaction:
            rows = sorted(satisfaction)
            infos.add_column("interview", [env_list[r] for r in rows], [{"satisfaction": satisfaction[r], "liked": "", "missed": ""} for r in rows])


def feelings(n_watched: np.ndarray, rating_sum: np.ndarray, has_page: np.ndarray) -> list[str]:
    """`feeling_of` over arrays, with its levels (`FEELINGS`); "" where no page was shown."""
    mean = rating_sum / np.maximum(n_watched, 1)
    choice = np.select(
        [~has_page, n_watched == 0, *(mean >= level for level, _ in FEELINGS)],
        ["", "bored", *(word for _, word in FEELINGS)],
        FEELING_BELOW,
    )
    return choice.tolist()


def uses_array_path(make_user: Any, config: EnvConfig) -> bool:
    """Whether a vector env with this user factory and config takes the array path."""
    return make_user is None and not config.text
