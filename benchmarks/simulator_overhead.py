"""How much the simulator costs beyond the users themselves (issue 6).

    .venv/bin/python benchmarks/simulator_overhead.py            # ml-100k, statistical users + a few LLM sessions
    .venv/bin/python benchmarks/simulator_overhead.py --no-llm   # skip the embedded-LLM part

Statistical users (ml-100k, slate 10, at most 5 pages):

* baseline: the users' own vectorised cost, ``StatisticalBehaviour.decide`` on pre-built
  arrays ``[batch, slate]`` with one generator (no env, no bookkeeping);
* `show_pages` on 256 statistical user objects: the batched path every simulator uses
  (each user's own RNG row, already-had items, the users' page bookkeeping), no env;
* the single env (`RecArenaEnv`, one user at a time), the vector env (`RecArenaVectorEnv`,
  256 users per step: with a user object per sub-environment, on its array path, and on its
  array path without ``info["reactions"]``) and the population (all 943 users, most-popular recommender updated
  after every round, events in an on-disk SQLite WAL store), each as users x steps
  (pages) per second and sessions per second, with the ratio to the baseline. The population
  also reports its rate without the recommender's own time (``recommend`` + ``update``): the
  simulator's part, which is what the target is about.

Embedded LLM (SmolLM2 via llama.cpp, cold cache): a few env sessions of LLM users; the share
of wall time spent outside LLM calls (target < 5%).

Figures go to stdout and to runs/benchmarks/simulator_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from recarena.agents.contract import SessionContext
from recarena.recommenders import build_recommender
from recarena.simulator.env import EnvConfig, RecArenaEnv
from recarena.simulator.population import Population, PopulationConfig
from recarena.simulator.registration import movielens_kit
from recarena.simulator.sessions import show_pages
from recarena.simulator.vector_env import RecArenaVectorEnv

SLATE, PAGES = 10, 5


def baseline(kit, batch: int, repeats: int) -> dict[str, float]:
    """The vectorised users alone: pages per second on pre-built arrays."""
    rng = np.random.default_rng(0)
    n_users, n_items = kit.history.n_users, kit.history.n_items
    users = rng.integers(0, n_users, batch)
    items = np.argsort(rng.random((batch, n_items)), 1)[:, :SLATE]
    pages = rng.integers(0, PAGES, batch)
    already = np.zeros((batch, SLATE), bool)
    kit.behaviour.decide(rng, users, items, pages, already)
    start = time.perf_counter()
    for _ in range(repeats):
        kit.behaviour.decide(rng, users, items, pages, already)
    seconds = time.perf_counter() - start
    return {"user_steps_per_s": batch * repeats / seconds}


def batched_pages(kit, batch: int, repeats: int) -> dict[str, float]:
    """`show_pages` on fresh statistical users' first pages (users built and started outside the timer)."""
    rng = np.random.default_rng(1)
    n_users, n_items = kit.history.n_users, kit.history.n_items
    seconds = 0.0
    for r in range(repeats):
        users = [kit.statistical_user(int(u), np.random.default_rng([r, int(u)])) for u in rng.integers(0, n_users, batch)]
        for user in users:
            user.start_session(SessionContext())
        slates = np.argsort(rng.random((batch, n_items)), 1)[:, :SLATE].tolist()
        start = time.perf_counter()
        show_pages(users, slates)
        seconds += time.perf_counter() - start
    return {"user_steps_per_s": batch * repeats / seconds}


def single_env(kit, episodes: int) -> dict[str, float]:
    env = RecArenaEnv(kit, EnvConfig(slate_size=SLATE, max_pages=PAGES, interview=True))
    actions = [env.action_space.sample() for _ in range(PAGES)]
    steps = 0
    start = time.perf_counter()
    for e in range(episodes):
        env.reset(seed=e)
        for action in actions:
            steps += 1
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    seconds = time.perf_counter() - start
    return {"user_steps_per_s": steps / seconds, "sessions_per_s": episodes / seconds}


def vector_env(kit, num_envs: int, steps: int, reaction_info: bool = True, array_users: bool | None = None) -> dict[str, float]:
    envs = RecArenaVectorEnv(kit, num_envs, EnvConfig(slate_size=SLATE, max_pages=PAGES, reaction_info=reaction_info), array_users=array_users)
    actions = [envs.action_space.sample() for _ in range(8)]
    envs.reset(seed=0)
    ended, shown = 0, 0
    start = time.perf_counter()
    for t in range(steps):
        _, _, terminated, truncated, info = envs.step(actions[t % len(actions)])
        ended += int((terminated | truncated).sum())
        shown += int(info.get("_page", np.zeros(num_envs, bool)).sum())  # autoreset steps show nothing
    seconds = time.perf_counter() - start
    return {"user_steps_per_s": shown / seconds, "sessions_per_s": ended / seconds, "num_envs": num_envs}


class Timed:
    """Wraps an object's methods and adds the seconds spent inside them to `seconds`."""

    def __init__(self, target: Any, names: tuple[str, ...]):
        self.target, self.seconds, self.names = target, 0.0, names

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if name not in self.names:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def population(kit, rounds: int, store_dir: Path) -> dict[str, float]:
    recommender = Timed(build_recommender("pop").fit(kit.history), ("recommend", "update"))
    recommender.name = "pop"  # type: ignore[attr-defined]
    config = PopulationConfig(rounds=rounds, slate_size=SLATE, max_pages=PAGES, progress=False)
    start = time.perf_counter()
    model = Population(kit, recommender, config, seed=0, run_dir=store_dir)
    model.events = Timed(model.events, ("record_session",))  # type: ignore[assignment]
    model.run()
    seconds = time.perf_counter() - start
    frame = model.events.impressions()
    sessions = len(model.events.sessions())
    pages = len(frame.groupby(["round", "user", "page"])) if len(frame) else 0
    return {
        "user_steps_per_s": pages / seconds,
        "sessions_per_s": sessions / seconds,
        "user_steps_per_s_without_recommender": pages / (seconds - recommender.seconds),
        "sessions_per_s_without_recommender": sessions / (seconds - recommender.seconds),
        "sessions": sessions,
        "seconds": seconds,
        "share_recommender": recommender.seconds / seconds,
        "share_event_store_writes": model.events.seconds / seconds,
    }


def llm_sessions(kit, episodes: int) -> dict[str, float]:
    from recarena.agents.llm import LLMConfig, make_llm

    with tempfile.TemporaryDirectory() as tmp:
        llm = Timed(make_llm("embedded", LLMConfig(cache_path=Path(tmp) / "cache.sqlite", progress=False)), ("score", "score_many", "chat", "chat_many"))
        env = RecArenaEnv(kit, EnvConfig(slate_size=5, max_pages=2), make_user=lambda u, rng: kit.llm_user(u, rng, llm))
        llm.score([{"role": "user", "content": "Warm up. Yes or No?"}], ["Yes", "No"])  # model load, not a session
        llm.seconds = 0.0
        steps = 0
        start = time.perf_counter()
        for e in range(episodes):
            obs, _ = env.reset(seed=e)
            while True:
                steps += 1
                obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
                if terminated or truncated:
                    break
        seconds = time.perf_counter() - start
        usage = llm.target.accountant.total()
    return {
        "sessions": episodes,
        "user_steps": steps,
        "seconds": seconds,
        "llm_seconds": llm.seconds,
        "share_outside_llm": 1 - llm.seconds / seconds,
        "llm_calls": usage.calls,
        "sessions_per_s": episodes / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-llm", action="store_true", help="skip the embedded-LLM sessions")
    parser.add_argument("--llm-sessions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    kit = movielens_kit("ml-100k", 0)
    results: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}"}
    results["baseline_decide_b256"] = baseline(kit, 256, 400)
    results["baseline_decide_b1"] = baseline(kit, 1, 3000)
    results["show_pages_256"] = batched_pages(kit, 256, 40)
    results["single_env"] = single_env(kit, 300)
    results["vector_env_256_user_objects"] = vector_env(kit, 256, 100, array_users=False)
    results["vector_env_256"] = vector_env(kit, 256, 100)
    results["vector_env_256_no_reaction_info"] = vector_env(kit, 256, 100, reaction_info=False)
    with tempfile.TemporaryDirectory() as tmp:
        results["population_943"] = population(kit, args.rounds, Path(tmp) / "run")
    if not args.no_llm:
        results["llm_env"] = llm_sessions(kit, args.llm_sessions)

    base = results["baseline_decide_b256"]["user_steps_per_s"]
    print(f"{'path':<36}{'user x steps/s':>16}{'sessions/s':>12}{'x slower than decide(256)':>28}")
    p = results["population_943"]
    results["population_943_without_recommender"] = {
        "user_steps_per_s": p["user_steps_per_s_without_recommender"], "sessions_per_s": p["sessions_per_s_without_recommender"],
    }  # fmt: skip
    names = ("baseline_decide_b256", "baseline_decide_b1", "show_pages_256", "single_env", "vector_env_256_user_objects", "vector_env_256",
             "vector_env_256_no_reaction_info", "population_943", "population_943_without_recommender")  # fmt: skip
    for name in names:
        r = results[name]
        print(f"{name:<36}{r['user_steps_per_s']:>16,.0f}{r.get('sessions_per_s', float('nan')):>12,.1f}{base / r['user_steps_per_s']:>28.1f}")
    print(f"population: {p['sessions']} sessions in {p['seconds']:.1f}s; recommender {p['share_recommender']:.0%}, event-store writes {p['share_event_store_writes']:.0%} of wall time")
    if "llm_env" in results:
        r = results["llm_env"]
        print(f"LLM env: {r['sessions']} sessions, {r['user_steps']} pages, {r['llm_calls']} LLM calls in {r['seconds']:.1f}s; outside LLM calls {r['share_outside_llm']:.2%} (target < 5%)")
    out = Path("runs") / "benchmarks" / "simulator_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
