"""`Population`: a Mesa 3 model of simulated users returning day after day to one recommender.

    pop = Population(kit, build_recommender("pop").fit(kit.history), PopulationConfig(rounds=5), seed=0, run_dir="runs/a")
    pop.run()                                       # resumes if runs/a holds a killed run with this config
    pop.datacollector.get_model_vars_dataframe()    # per-round figures
    pop.events.impressions()                        # every impression and reaction

Each round (a simulated day):

1. each agent is active with the probability of its user's activity tier (``activity``);
2. active users run a session in batches of ``batch_size``: page after page the recommender
   ranks ``slate_size`` items per user (never one the recommender knows the user had, nor one
   shown earlier in the session), and `show_pages` collects the reactions (statistical users
   vectorised, LLM users' calls in flight together); a user leaves or hits ``max_pages``;
3. each finished session is committed to the event store with the user's snapshot;
4. the round's figures are computed from the store and collected by the `DataCollector`;
5. every ``update_every`` rounds the recommender is updated on the round's watches (the
   feedback loop of Agent4Rec's filter-bubble study).

Randomness: who is active in round r comes from ``SeedSequence([seed, r])``; the session of
user u in round r draws from ``SeedSequence([seed, r, u])``. Nothing depends on the order or
batching of sessions, so a resumed run (completed sessions skipped, user snapshots restored,
updates of completed rounds replayed from the store) ends with the same events as an
uninterrupted one, provided the recommender ranks each user independently of the others in
a batch and updates deterministically (every model of the registry does).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import mesa
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.agents.contract import SessionContext, SimulatedUser
from recarena.agents.kit import UserKit
from recarena.agents.profile import TIERS

from .env import statistical_users
from .events import EventStore, PageRecord, SessionRecord
from .metrics import FIGURES, round_figures
from .rundir import RunDirectory
from .sessions import show_pages

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
        self.kit, self.recommender, self.config, self.seed_value = kit, recommender, config, int(seed)
        history = kit.history
        self.n_items = history.n_items
        self.base_time = int(history.interactions["timestamp"].max()) + 1 if len(history.interactions) else 0
        make_user = make_user or statistical_users(kit)
        users = self._choose_users(history.n_users)
        for u in users:
            UserAgent(self, int(u), make_user(int(u), np.random.default_rng(np.random.SeedSequence([self.seed_value, u]))))
        self.user_agents: list[UserAgent] = sorted(self.agents, key=lambda a: a.user_id)
        self.run_dir: RunDirectory | None = None
        if run_dir is not None:
            recorded = {"population": asdict(config), "recommender": getattr(recommender, "name", type(recommender).__name__), **(describe or {})}
            self.run_dir = RunDirectory(run_dir, recorded, self.seed_value)
            self.events = self.run_dir.events
        else:
            self.events = EventStore(":memory:")
        self.datacollector = mesa.DataCollector(model_reporters={name: _reporter(name) for name in FIGURES})
        self.figures: dict[str, float] = {}
        self.round = 0
        self._resume()

    def _choose_users(self, n_users: int) -> np.ndarray:
        c = self.config
        if c.users is not None:
            users = np.unique(np.asarray(c.users, dtype=np.int64))
            if len(users) == 0 or users.min() < 0 or users.max() >= n_users:
                raise ValueError(f"PopulationConfig.users must be ids in 0..{n_users - 1}")
            return users
        if c.n_users is not None:
            picker = np.random.default_rng(np.random.SeedSequence([self.seed_value, 2**31 - 1]))
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
        active = np.random.default_rng(np.random.SeedSequence([self.seed_value, r])).random(len(self.user_agents)) < chance
        todo = [a for a, on in zip(self.user_agents, active) if on and (r, a.user_id) not in done]
        for start in range(0, len(todo), c.batch_size):
            self._sessions(todo[start : start + c.batch_size], r)
        self.figures = round_figures(self.events, c.run, c.arm, r, self.kit.history)
        self.events.record_round(c.run, c.arm, r, self.figures, time.time())
        self.datacollector.collect(self)
        self._update_recommender(r)
        self.round = r + 1

    def _sessions(self, agents: list[UserAgent], r: int) -> None:
        c = self.config
        for agent in agents:
            agent.user.rng = np.random.default_rng(np.random.SeedSequence([self.seed_value, r, agent.user_id]))
            agent.user.start_session(SessionContext(session=agent.sessions, round=r, max_pages=None, text=c.text))
        pages: dict[int, list[PageRecord]] = {a.user_id: [] for a in agents}
        shown: dict[int, list[int]] = {a.user_id: [] for a in agents}
        alive = list(agents)
        sim_time = self.base_time + r * c.seconds_per_round
        for page in range(c.max_pages):
            if not alive:
                break
            slates = self._slates(alive, shown)
            viewing = [a for a, s in zip(alive, slates) if s]
            started = time.time()
            reactions = show_pages([a.user for a in viewing], [s for s in slates if s], c.threads)
            finished = time.time()
            for agent, reaction in zip(viewing, reactions):
                pages[agent.user_id].append(PageRecord(reaction, started, finished, sim_time))
                shown[agent.user_id].extend(x.item for x in reaction.items)
            still, viewed = [], {a.user_id for a in viewing}
            for agent in alive:
                record = pages[agent.user_id]
                left = bool(record and record[-1].reaction.leave)
                if left or page == c.max_pages - 1 or agent.user_id not in viewed:
                    self._finish(agent, r, record, left)
                else:
                    still.append(agent)
            alive = still

    def _slates(self, agents: list[UserAgent], shown: dict[int, list[int]]) -> list[list[int]]:
        ids = np.array([a.user_id for a in agents], dtype=np.int64)
        known = getattr(self.recommender, "histories", None)
        exclude = [
            np.concatenate([np.asarray(known[u], dtype=np.int64) if known is not None else np.array([], np.int64), np.asarray(shown[u], dtype=np.int64)])
            for u in ids.tolist()
        ]
        top = self.recommender.recommend(ids, self.config.slate_size, exclude=exclude)
        return [[int(i) for i in row if i >= 0] for row in np.asarray(top.items)]

    def _finish(self, agent: UserAgent, r: int, record: list[PageRecord], left: bool) -> None:
        c = self.config
        interview = agent.user.interview() if c.interview and record else None
        agent.user.end_session()
        session = SessionRecord(c.run, c.arm, r, agent.user_id, agent.sessions, record, left, interview, agent.user.get_state())
        self.events.record_session(session)
        agent.sessions += 1

    def _update_recommender(self, r: int) -> None:
        every = self.config.update_every
        if not every or (r + 1) % every:
            return
        rounds = list(range(r + 1 - every, r + 1))
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
        self.events.close()


def _reporter(name: str) -> Callable[[Population], float]:
    return lambda model: model.figures.get(name, float("nan"))
