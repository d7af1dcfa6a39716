"""`RecArenaVectorEnv`: many users' sessions stepped at once (Gymnasium's natively batched vector form).

    envs = gymnasium.make_vec("recarena/MovieLens100K-v0", num_envs=256, vectorization_mode="vector_entry_point")
    obs, info = envs.reset(seed=0)
    obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())

Sub-environment i behaves like a `RecArenaEnv` whose ``np_random`` is the i-th child of
the seed. With the kit's statistical users (no ``make_user``, no text) the sessions live in
arrays (`vector_statistical.StatisticalSessions`, no user objects; ``array_users=False``
forces the object path, which gives exactly the same steps). Otherwise a step shows every
sub-environment's slate in one call to `show_pages`: statistical users through the
vectorised ``StatisticalBehaviour.decide``, LLM users in a thread pool so their LLM calls
are in flight together. Finished sub-environments
reset on the following step (``AutoresetMode.NEXT_STEP``, Gymnasium's default): that
step ignores their action and returns the new episode's first observation with reward 0.

The observation's arrays are kept batched (``[num_envs, ...]``; each sub-environment's
tracker owns a row, and full valid slates are written for all sub-environments at once)
and the infos are laid out once per step in Gymnasium's vector layout (an array per key
and a ``_key`` mask), instead of stacking per-environment observations and adding infos
key by key. What remains per sub-environment is the session's own bookkeeping (the user's
page record, the reward, the ``info`` reactions).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recarena.agents.kit import UserKit

from .env import (
    EnvConfig, InvalidSlateError, SessionTracker, SlateSpace, UserFactory, check_slate, describe_invalid, observation_rows,
    observation_space, statistical_users, user_histories,
)  # fmt: skip
from .sessions import show_pages
from .vector_statistical import StatisticalSessions, uses_array_path


class RecArenaVectorEnv(VectorEnv):
    """`num_envs` sessions stepped together (see the module docstring)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, kit: UserKit, num_envs: int, config: EnvConfig = EnvConfig(), make_user: UserFactory | None = None, threads: int = 8,
                 array_users: bool | None = None):  # fmt: skip
        config.validate()
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.kit, self.config, self.num_envs, self.threads = kit, config, num_envs, threads
        self.make_user: UserFactory = make_user or statistical_users(kit)
        array_path = uses_array_path(make_user, config) if array_users is None else array_users
        if array_path and not uses_array_path(make_user, config):
            raise ValueError("array_users=True needs the kit's statistical users (no make_user) and text off")
        dataset = kit.history
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.histories = user_histories(dataset)
        self.candidate_users = np.arange(self.n_users) if config.users is None else np.asarray(config.users, dtype=np.int64)
        self.single_observation_space = observation_space(self.n_users, self.n_items, config)
        self.single_action_space = SlateSpace(self.n_items, config.slate_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = SlateSpace(self.n_items, config.slate_size, batch=num_envs)
        self.generators: list[np.random.Generator] = []
        self.trackers: list[SessionTracker | None] = [None] * num_envs
        self.rows = observation_rows(config, num_envs)
        self.users = np.zeros(num_envs, np.int64)
        self.pages = np.zeros(num_envs, np.int64)
        self.done = np.ones(num_envs, bool)  # a sub-environment whose session ended (or never began) restarts on the next step
        # The kit's statistical users' sessions in arrays (vector_statistical.py); None: a user object per sub-environment.
        self.sessions = StatisticalSessions(kit, config, self.rows, num_envs, self.histories) if array_path else None

    # ------------------------------------------------------------------ episodes
    def _start(self, envs: Sequence[int], user_ids: Sequence[int | None] | None = None, infos: "VectorInfos | None" = None) -> None:
        """Start a session in each of `envs` (users drawn from each one's generator where not given)."""
        chosen = []
        for k, i in enumerate(envs):
            user_id = None if user_ids is None else user_ids[k]
            if user_id is None:
                # the same draw as ``rng.choice(self.candidate_users)``, without choice's per-call overhead
                user_id = int(self.candidate_users[self.generators[i].integers(0, len(self.candidate_users))])
            elif not 0 <= user_id < self.n_users:
                raise ValueError(f"reset options['users']: {user_id} is outside 0..{self.n_users - 1}")
            chosen.append(user_id)
        self.users[envs], self.pages[envs], self.done[envs] = chosen, 0, False
        if self.sessions is not None:
            self.sessions.start(envs, chosen)
        else:
            for i, user_id in zip(envs, chosen):
                rows = {key: array[i] for key, array in self.rows.items()}
                self.trackers[i] = SessionTracker(user_id, self.make_user(user_id, self.generators[i]), self.histories[user_id], self.config, rows)
        if infos is not None:
            infos.add_column("user", list(envs), chosen)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a session in every sub-environment; ``options={"users": [...]}`` picks the users."""
        super().reset(seed=seed)
        if seed is not None or not self.generators:
            root = np.random.SeedSequence(seed) if seed is not None else np.random.SeedSequence(int(self.np_random.integers(2**63)))
            self.generators = [np.random.default_rng(s) for s in root.spawn(self.num_envs)]
        users = (options or {}).get("users")
        if users is not None and len(users) != self.num_envs:
            raise ValueError(f"reset options['users'] has {len(users)} ids for {self.num_envs} environments")
        infos = VectorInfos(self.num_envs)
        self._start(list(range(self.num_envs)), None if users is None else [int(u) for u in users], infos)
        return self._observations(), infos.build()

    def restart(self, envs: Sequence[int]) -> dict[str, np.ndarray]:
        """Start new sessions in `envs` now (users drawn from their generators) and return every sub-environment's
        observation: the same-step autoreset that Stable-Baselines3's vector envs expect (sb3_vec_env.py). A
        restarted sub-environment is live, so the next step shows its slate instead of resetting it."""
        if not self.generators:
            raise RuntimeError("restart() before reset()")
        self._start([int(i) for i in envs])
        return self._observations()

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self.generators:
            raise RuntimeError("step() before reset()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.config.slate_size):
            raise InvalidSlateError(f"actions: expected shape {(self.num_envs, self.config.slate_size)}, got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise InvalidSlateError(f"actions: expected integer item ids, got dtype {actions.dtype}")
        rewards = np.zeros(self.num_envs, np.float64)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        infos = VectorInfos(self.num_envs)
        live = np.flatnonzero(~self.done)
        rows = actions[live]
        in_range = (rows >= 0) & (rows < self.n_items)
        ordered = np.sort(rows, axis=1)
        clean = in_range.all(1) & ~(ordered[:, 1:] == ordered[:, :-1]).any(1)  # the common case, checked at once
        slates: list[list[int]] = rows.tolist()
        masks: list[np.ndarray | None] = [None] * len(live)
        for j in np.flatnonzero(~clean).tolist():  # validate every slate before anything changes
            i = int(live[j])
            slates[j], masks[j] = check_slate(actions[i], self.n_items, self.config.slate_size)
            if self.config.invalid_slate == "error":
                raise InvalidSlateError(f"environment {i}: " + describe_invalid(actions[i], masks[j], self.n_items))
        showing = live.tolist()
        self._start(np.flatnonzero(self.done).tolist(), None, infos)  # autoreset (next-step mode): their actions are ignored
        if self.sessions is not None:
            rewards[showing], terminated[showing], truncated[showing] = self.sessions.show(
                showing, slates, masks, self.users, self.pages, self.generators, infos
            )
            self.done[showing] = terminated[showing] | truncated[showing]
            return self._observations(), rewards, terminated, truncated, infos.build()
        shown = [j for j, items in enumerate(slates) if items]
        reactions = show_pages([self.trackers[showing[j]].user for j in shown], [slates[j] for j in shown], self.threads)
        by_row = dict(zip(shown, reactions))
        # Full, valid slates (the common case): every such row of the observation written at once.
        bulk = [j for j in shown if masks[j] is None and len(slates[j]) == self.config.slate_size]
        if bulk:
            where = [showing[j] for j in bulk]
            ratings = np.array([[r.rating or 0 for r in by_row[j].items] for j in bulk], dtype=np.int64)
            self.rows["last_items"][where] = [slates[j] for j in bulk]
            self.rows["last_ratings"][where] = ratings
            self.rows["last_watched"][where] = ratings > 0  # rated exactly when watched (the user contract)
        written = set(bulk)
        for j, i in enumerate(showing):
            tracker = self.trackers[i]
            rewards[i], terminated[i], truncated[i], info = tracker.record(by_row.get(j), masks[j], j not in written)
            self.pages[i] = tracker.page
            self.done[i] = tracker.done
            infos.add(i, info)
        return self._observations(), rewards, terminated, truncated, infos.build()

    def _observations(self) -> dict[str, np.ndarray]:
        return {
            "user": self.users.copy(),
            "history": self.rows["history"].copy(),
            "page": self.pages.copy(),
            "last_items": self.rows["last_items"].copy(),
            "last_watched": self.rows["last_watched"].copy(),
            "last_ratings": self.rows["last_ratings"].copy(),
        }


class VectorInfos:
    """Sub-environments' info dicts gathered over a step, then laid out as Gymnasium's ``VectorEnv._add_info``
    lays them out (an array per key, ``None``/0 where absent, and a boolean ``_key`` mask; dicts nest),
    with one array write per key instead of one per sub-environment and key."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.values: dict[str, tuple[list[int], list[Any]]] = {}  # key -> (sub-environments, their values)

    def add(self, i: int, info: dict[str, Any]) -> None:
        for key, value in info.items():
            envs, values = self.values.setdefault(key, ([], []))
            envs.append(i)
            values.append(value)

    def add_column(self, key: str, envs: Sequence[int], values: Sequence[Any] | np.ndarray) -> None:
        """One key's values for sub-environments `envs` at once (as `add` of each env's info would).

        A numeric array of `values` (int64, float64 or bool: the types Python's int, float and bool
        give) is laid out without a trip through Python objects."""
        if not len(envs):
            return
        if key not in self.values and isinstance(values, np.ndarray):
            self.values[key] = (list(envs), values)  # type: ignore[assignment]
            return
        have_envs, have_values = self.values.setdefault(key, ([], []))
        if isinstance(have_values, np.ndarray):  # a second column for the key: back to a list
            have_values = have_values.tolist()
            self.values[key] = (have_envs, have_values)
        have_envs.extend(envs)
        have_values.extend(values.tolist() if isinstance(values, np.ndarray) else values)

    def build(self) -> dict[str, Any]:
        return _lay_out(self.values, self.num_envs)


def _lay_out(values: dict[str, tuple[list[int], list[Any]]], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (where, column) in values.items():
        if isinstance(column, np.ndarray):
            array = np.zeros(n, dtype=column.dtype)
            array[where] = column
            mask = np.zeros(n, dtype=np.bool_)
            mask[where] = True
            out[key], out[f"_{key}"] = array, mask
            continue
        first = column[0]
        if isinstance(first, dict):
            nested: dict[str, tuple[list[int], list[Any]]] = {}
            for i, value in zip(where, column):
                for inner, v in value.items():
                    envs, inner_values = nested.setdefault(inner, ([], []))
                    envs.append(i)
                    inner_values.append(v)
            array: Any = _lay_out(nested, n)
        elif type(first) in (int, float, bool) or isinstance(first, np.number):
            array = np.zeros(n, dtype=type(first))
            array[where] = column
        elif isinstance(first, np.ndarray):
            array = np.zeros((n, *first.shape), dtype=first.dtype)
            array[where] = column
        elif isinstance(first, (list, tuple)):
            array = np.full(n, None, dtype=object)
            for i, value in zip(where, column):  # element by element: a list value must stay one object
                array[i] = value
        else:
            array = np.full(n, None, dtype=object)
            array[where] = column
        mask = np.zeros(n, dtype=np.bool_)
        mask[where] = True
        out[key], out[f"_{key}"] = array, mask
    return out
