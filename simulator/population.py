"""`Population`: a Mesa 3 model of simulated users returning day after day to one recommender.

    pop = Population(kit, build_recommender("pop").fit(kit.history), PopulationConfig(rounds=5), seed=0, run_dir="runs/a")
    pop.run()                                       # resumes if runs/a holds a killed run with this config
    pop.datacollector.get_model_vars_dataframe()    # per-round figures
    pop.events.impressions()                        # every impression and reaction

Each round (a simulated day):

1. each agent is active with the probability of its user's activity tier (``activity``);
2. active users run a session in batches of ``batch_size`` through the session engine
   (session_engine.py): page after page the recommender ranks ``slate_size`` items per user
   (never one the recommender knows the user had, nor one shown earlier in the session, nor, with
   ``exclude_watched``, one the user watched in an earlier round; ``explore`` may re-rank or
   explore, see exploration.py), and `show_pages` collects the reactions (statistical users
   vectorised, LLM users' calls in flight together); a user leaves or hits ``max_pages``;
3. each finished session is committed to the event store with the user's snapshot;
4. the round's figures are computed from what the round stored (kept in memory as it was stored,
   `round_log.py`) and collected by the `DataCollector`;
5. every ``update_every`` rounds the recommender is updated on the round's watches (the
   feedback loop of Agent4Rec's filter-bubble study).

Randomness (named streams, `recarena.simulator.data.streams`): the users are built from
``POPULATION_USER`` (seed, user), drawn (``n_users``) from ``POPULATION_USERS``; who is active in
round r comes from ``POPULATION_ACTIVE`` (seed, r); the session of user u in round r draws from
``POPULATION_SESSION`` (seed, r, u), its exploring slots (``explore.epsilon``) from
``POPULATION_SLOTS`` (seed, r, u). Nothing depends on the order or
batching of sessions, so a resumed run (completed sessions skipped, user snapshots restored,
updates of completed rounds replayed from the store) ends with the same events as an
uninterrupted one, provided the recommender ranks each user independently of the others in
a batch and updates deterministically (every model of the registry does).

Backends (``backend``): the sessions of a batch run in `population_shards.round_sessions`, a pure
function of the users, the round's world and the users' watched sets. ``"local"`` calls it here;
``"ray"`` cuts the round's active users into shards run as Ray tasks, which rebuild their users
from the factory and the snapshots, and the driver writes each shard's records and restores its
agents from them. The events are the same either way (statistical users only on Ray).
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import mesa
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.agents.contract import SimulatedUser
from recarena.agents.kit import UserKit
from recarena.agents.profile import TIERS
from recarena.agents.statistical import StatisticalFactory
from recarena.simulator.data.streams import POPULATION_ACTIVE, POPULATION_USER, POPULATION_USERS

from .env import statistical_users
from .events import EventStore, SessionRecord
from .exploration import SlatePolicy, genre_unit_vectors
from .metrics import FIGURES, figures_of, round_figures
from .parallel import BACKENDS, Executor, make_executor, split_evenly
from .population_shards import RoundWorld, SharedUsers, Shard, UserTask, round_sessions, run_shard
from .round_log import RoundLog
from .rundir import RunDirectory
from .session_engine import SessionPlan

UserFactory = Callable[[int, np.random.Generator], SimulatedUser]


@dataclass(frozen=True)
class PopulationConfig:
    """How the population lives (see the module docstring)."""

    rounds: int = 5
    """Rounds (simulated days) that `run` plays."""
    slate_size: int = 10
    """Items per page."""
    max_pages: int = 5
    """A session ends after this many pages at the latest."""
    activity: tuple[float, float, float] = (0.2, 0.4, 0.7)
    """Probability that a user of activity tier low / medium / high is active in a round."""
    users: tuple[int, ...] | None = None
    """The users in the population (default: every user of the kit's history)."""
    n_users: int | None = None
    """Instead of `users`: this many users drawn (seeded) from all."""
    update_every: int = 1
    """Update the recommender after every this many rounds (0: never)."""
    batch_size: int = 256
    """Sessions stepped together."""
    interview: bool = True
    """Interview every user after the session (an LLM call for LLM users)."""
    text: bool = False
    """Ask users for reasons and feelings in words."""
    threads: int = 8
    """Threads for LLM users' pages (their calls go out together)."""
    seconds_per_round: int = 86_400
    """Simulated time between rounds (timestamps the recommender sees)."""
    run: str = "run"
    """The run's name in the event store."""
    arm: str = "main"
    """The arm's name in the event store (A/B tests run several)."""
    progress: bool = True
    """Show a tqdm bar over rounds."""
    exclude_watched: bool = True
    """Never show an item the user watched in an earlier round (the system's own logs), even when the
    recommender has not been updated on it (``update_every=0``)."""
    explore: SlatePolicy = SlatePolicy()
    """How the ranking becomes a slate: as ranked (default), MMR genre re-ranking and/or epsilon-greedy."""
    backend: str = "local"
    """Where a round's sessions run: ``"local"`` (this process) or ``"ray"`` (shards as Ray tasks, statistical
    users only; ``pip install 'recarena[ray]'``). The events are the same either way."""
    workers: int = 2
    """Ray workers: the CPUs of the local Ray started for the run (unless Ray is up already); a round has at least 2 shards a worker."""
    ray_address: str | None = None
    """An existing Ray cluster's address (default: a local Ray with `workers` CPUs, or the Ray already initialised)."""


# Where sessions run does not change a run's events: a run started locally may resume on Ray.
_NOT_RECORDED = ("backend", "workers", "ray_address")


class UserAgent(mesa.Agent):
    """A Mesa agent wrapping one simulated user."""

    def __init__(self, model: "Population", user_id: int, user: SimulatedUser):
        super().__init__(model)
        self.user_id, self.user = user_id, user
        self.sessions = 0
        self.tier = TIERS.index(user.profile.activity_tier)


class Population(mesa.Model):
    """Users (agents) and a recommender over rounds, logging to an event store (see the module docstring)."""

    def __init__(
        self,
        kit: UserKit,
        recommender: Any,
        config: PopulationConfig = PopulationConfig(),
        *,
        seed: int = 0,
        make_user: UserFactory | None = None,
        run_dir: str | Path | None = None,
        describe: dict[str, Any] | None = None,
    ):
        super().__init__(seed=seed)
        config.explore.validate()
        if config.backend not in BACKENDS:
            raise ValueError(f"PopulationConfig.backend: unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
        if config.workers < 1:
            raise ValueError(f"PopulationConfig.workers: must be at least 1, got {config.workers}")
        self.kit, self.recommender, self.config, self.seed_value = kit, recommender, config, int(seed)
        history = kit.history
        self.n_items = history.n_items
        self.base_time = int(history.interactions["timestamp"].max()) + 1 if len(history.interactions) else 0
        # Ray workers rebuild users from the factory: the default one without the kit's history.
        self._make_user = make_user or StatisticalFactory(kit.profiles, kit.behaviour, kit.item_genres)
        make_user = make_user or statistical_users(kit)
        users = self._choose_users(history.n_users)
        for u in users:
            UserAgent(self, int(u), make_user(int(u), POPULATION_USER.generator(self.seed_value, user=int(u))))
        self.user_agents: list[UserAgent] = sorted(self.agents, key=lambda a: a.user_id)
        # Users decided one by one are the LLM kinds (the contract's batch behaviour is how the simulator tells).
        if config.backend == "ray" and not all(a.user.batch_behaviour() is not None for a in self.user_agents):
            raise ValueError("PopulationConfig.backend='ray' runs statistical users only (LLM and hybrid users hold a process-bound LLM); use backend='local'")
        self._executor: Executor | None = None
        self._shared_users: Any = None
        self.run_dir: RunDirectory | None = None
        if run_dir is not None:
            population = {k: v for k, v in asdict(config).items() if k not in _NOT_RECORDED} | {"explore": config.explore.recorded()}
            recorded = {"population": population, "recommender": getattr(recommender, "name", type(recommender).__name__), **(describe or {})}
            self.run_dir = RunDirectory(run_dir, recorded, self.seed_value)
            self.events = self.run_dir.events
        else:
            self.events = EventStore(":memory:")
        self.datacollector = mesa.DataCollector(model_reporters={name: _reporter(name) for name in FIGURES})
        self.figures: dict[str, float] = {}
        # Rounds as they were stored (round_log.py): the figures and updates read them instead of the store.
        self.round_logs: dict[int, RoundLog] = {}
        self._ever_shown: np.ndarray | None = None  # items shown in any round so far (None: ask the store)
        self._genre_vectors = genre_unit_vectors(history.genre_matrix()) if config.explore.mmr > 0 else None
        self.round = 0
        self.watched: dict[int, set[int]] = {a.user_id: set() for a in self.user_agents}
        self._resume()

    def _choose_users(self, n_users: int) -> np.ndarray:
        c = self.config
        if c.users is not None:
            users = np.unique(np.asarray(c.users, dtype=np.int64))
            if len(users) == 0 or users.min() < 0 or users.max() >= n_users:
                raise ValueError(f"PopulationConfig.users must be ids in 0..{n_users - 1}")
            return users
        if c.n_users is not None:
            picker = POPULATION_USERS.generator(self.seed_value)
            return np.sort(picker.choice(n_users, size=min(c.n_users, n_users), replace=False))
        return np.arange(n_users)

    # ------------------------------------------------------------------ resume
    def _resume(self) -> None:
        """Restore users, figures and recommender updates from what the store already holds."""
        c = self.config
        states = self.events.latest_user_states(c.run, c.arm)
        for agent in self.user_agents:
            if agent.user_id in states:
                agent.sessions, state = states[agent.user_id]
                if state is not None:
                    agent.user.set_state(state)
        logged = self.events.impressions(c.run, c.arm)
        if len(logged):
            for u, item in zip(logged.loc[logged["watched"], "user"].tolist(), logged.loc[logged["watched"], "item"].tolist()):
                self.watched.setdefault(int(u), set()).add(int(item))
        for round_, figures in self.events.completed_rounds(c.run, c.arm).items():
            if round_ != self.round:
                raise RuntimeError(f"event store: round {round_} is complete but round {self.round} is not")
            self.figures = figures
            self.datacollector.collect(self)
            self._update_recommender(round_)
            self.round = round_ + 1

    # ------------------------------------------------------------------ rounds
    def run(self, rounds: int | None = None) -> pd.DataFrame:
        """Play until `rounds` (default ``config.rounds``) rounds are complete; returns the per-round figures."""
        target = self.config.rounds if rounds is None else rounds
        with tqdm(total=target, initial=min(self.round, target), desc="rounds", disable=not self.config.progress) as bar:
            while self.round < target:
                self.step()
                bar.update(1)
        return self.datacollector.get_model_vars_dataframe()

    def step(self) -> None:
        """One round: sessions, figures, recommender update."""
        c, r = self.config, self.round
        done = self.events.completed_sessions(c.run, c.arm)
        chance = np.asarray(c.activity, dtype=np.float64)[[a.tier for a in self.user_agents]]
        active = POPULATION_ACTIVE.generator(self.seed_value, round=r).random(len(self.user_agents)) < chance
        todo = [a for a, on in zip(self.user_agents, active) if on and (r, a.user_id) not in done]
        world = RoundWorld(self.recommender, self._plan(r), self.seed_value)
        self.round_logs[r] = RoundLog(r, whole=not any(round_ == r for round_, _ in done))
        with frozen_heap():
            if c.backend == "ray":
                self._ray_sessions(todo, world)
            else:
                for start in range(0, len(todo), c.batch_size):  # committed batch by batch: a killed run loses one batch at most
                    batch = todo[start : start + c.batch_size]
                    records = round_sessions(world, [a.user for a in batch], [a.user_id for a in batch], [a.sessions for a in batch],
                                             [self.watched[a.user_id] for a in batch])  # fmt: skip
                    self._commit(batch, records, restore=False)
        self.figures = self._round_figures(r)
        self.events.record_round(c.run, c.arm, r, self.figures, time.time())
        self.datacollector.collect(self)
        self._update_recommender(r)
        every = c.update_every
        if not every or (r + 1) % every == 0:  # the next update reads later rounds only
            self.round_logs.clear()
        self.round = r + 1

    def _plan(self, r: int) -> SessionPlan:
        """Round `r`'s sessions as the session engine runs them."""
        c = self.config
        return SessionPlan(c.run, c.arm, c.max_pages, c.slate_size, c.explore, round=r, sim_time=self.base_time + r * c.seconds_per_round,
                           text=c.text, interview=c.interview, exclude_watched=c.exclude_watched, threads=c.threads,
                           batch_size=c.batch_size, n_items=self.n_items, genre_vectors=self._genre_vectors)  # fmt: skip

    def _round_figures(self, r: int) -> dict[str, float]:
        """Round `r`'s figures: from its log when whole, else read back from the store."""
        c, log = self.config, self.round_logs[r]
        if not log.whole:
            self._ever_shown = None
            return round_figures(self.events, c.run, c.arm, r, self.kit.history)
        if self._ever_shown is None:
            self._ever_shown = np.zeros(self.n_items, bool)
            earlier = self.events.connection.execute("SELECT DISTINCT item FROM impressions WHERE run=? AND arm=? AND round<?", (c.run, c.arm, r))
            self._ever_shown[[item for (item,) in earlier]] = True
        frame = log.impressions()
        self._ever_shown[frame["item"].to_numpy()] = True
        return figures_of(frame, log.sessions(), self.kit.history, int(self._ever_shown.sum()))

    def _ray_sessions(self, todo: list[UserAgent], world: RoundWorld) -> None:
        """The round's sessions as shards of Ray tasks; each shard is committed as it comes back."""
        c = self.config
        if self._executor is None:
            self._executor = make_executor("ray", c.workers, c.ray_address)
            self._shared_users = self._executor.share(SharedUsers(self._make_user, self.seed_value))  # once per run
        shared = (self._shared_users, self._executor.share(world))  # the recommender as updated so far: once per round
        # Shards of a few batches: the workers stay busy, and a killed run loses little.
        count = max(2 * self._executor.workers, -(-len(todo) // (4 * c.batch_size)))
        parts = split_evenly(todo, count) if todo else []
        shards = [Shard(tuple(UserTask(a.user_id, a.sessions, a.user.get_state(), tuple(sorted(self.watched[a.user_id]))) for a in part))
                  for part in parts]  # fmt: skip
        for index, records in self._executor.imap_unordered(run_shard, shared, shards):
            self._commit(parts[index], records, restore=True)

    def _commit(self, agents: list[UserAgent], records: list[SessionRecord], restore: bool) -> None:
        """Write `records` (in user order) to the store and bring the agents up to date (from the
        snapshots, where the sessions ran on copies of the users)."""
        by_user = {a.user_id: a for a in agents}
        log = self.round_logs[self.round]
        for record in records:
            agent = by_user[record.user]
            self.events.record_session(record)
            log.add(record)
            if restore and record.user_state is not None:
                agent.user.set_state(record.user_state)
            self.watched[agent.user_id].update(x.item for page in record.pages for x in page.reaction.items if x.watched)
            agent.sessions += 1

    def _update_recommender(self, r: int) -> None:
        every = self.config.update_every
        if not every or (r + 1) % every:
            return
        rounds = list(range(r + 1 - every, r + 1))
        logs = [self.round_logs.get(round_) for round_ in rounds]
        if all(log is not None and log.whole for log in logs):
            frame = pd.concat([log.impressions() for log in logs], ignore_index=True)  # type: ignore[union-attr]
        else:
            frame = self.events.impressions(self.config.run, self.config.arm, rounds)
        if len(frame) == 0:
            return
        watched = frame[frame["watched"]]
        update = pd.DataFrame(
            {
                "user": watched["user"].to_numpy(np.int32),
                "item": watched["item"].to_numpy(np.int32),
                "rating": watched["rating"].to_numpy(np.float32),
                "timestamp": watched["sim_time"].to_numpy(np.int64),
            }
        )
        if len(update):
            self.recommender.update(update)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None
        if self.run_dir is not None:
            self.run_dir.close()  # the events and the directory's lock, for the next run (a resume) to take
        else:
            self.events.close()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the garbage collector's full passes off the objects that outlive a round (users, kit, recommender).
    A round allocates many short-lived objects; each full pass walked the whole population, about a tenth
    of a round's time in a profile of ml-100k's 943 users, more with more users. Where the caller froze the heap
    already, it stays as the caller left it (``gc.unfreeze`` would thaw the caller's objects too)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _reporter(name: str) -> Callable[[Population], float]:
    return lambda model: model.figures.get(name, float("nan"))
