"""Environment steps per second under Stable-Baselines3 against the raw vector env (issue 22, part 3).

    .venv/bin/python benchmarks/rl_env_speed.py                 # ml-100k, 64 sessions at once, ~2 minutes on 2 cores
    .venv/bin/python benchmarks/rl_env_speed.py --envs 256 --steps 200

One step is one page shown to one user (a sub-environment's step), so every figure is pages per second.
The users are the statistical users of the example (kit on ml-100k's leave-one-out training part, dynamics
fitted on validation), slate 10, at most 5 pages, no interview or reaction infos, ItemKNN as the base
recommender (its fitting is not timed; the candidates are loaded before the clock starts). In order:

1. **raw, fixed slates**: `RecArenaVectorEnv.step` alone on slates sampled beforehand (the env's own cost);
2. **raw, random slates**: the same with ``action_space.sample()`` each step (what a random agent pays);
3. **scoring env, random actions**: `ScoringVecEnv` (features, top-k slates, same-step restarts) under
   SB3's ``VecMonitor``, random weight vectors, no policy;
4. **scoring env, actions from an SB3 policy**: the same with ``PPO.predict`` (an untrained ``MlpPolicy``,
   sampled actions) choosing each step: the rate of collecting rollouts without learning;
5. **SB3 PPO learning**: ``PPO.learn`` on the same env with the example's settings (policy forward passes,
   rollout buffer, 10 epochs of updates per 2,048 steps): the rate an agent learns at;
6. **SB3 DummyVecEnv of single envs**: `SlateScoringEnv` copies (one `RecArenaEnv` with a user object each) in
   SB3's ``DummyVecEnv``, random actions: the way SB3 vectorises an env it knows nothing about.

Each figure is the median of ``--repeats`` timed runs (the 2-core box is shared); the ratio of each to the raw
env (1) is printed, and the headline: SB3 PPO learning (5) against the raw env (1). Figures go to stdout and to runs/benchmarks/rl_env_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np


def timed(run: Callable[[], int], repeats: int) -> float:
    """Median pages per second of `run` (which returns the pages it stepped)."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        pages = run()
        rates.append(pages / (time.perf_counter() - started))
    return float(np.median(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=64, help="sessions stepped together")
    parser.add_argument("--steps", type=int, default=400, help="vector steps per timed run (x envs pages)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/rl_env_speed.json"))
    args = parser.parse_args()

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from recarena.agents.kit import build_user_kit
    from recarena.recommenders import build_recommender
    from recarena.simulator.data import load_dataset
    from recarena.simulator.data.splits import leave_one_out
    from recarena.simulator.env import EnvConfig, RecArenaEnv
    from recarena.simulator.rl import FEATURES, CandidatePool, SlateScoringEnv
    from recarena.simulator.sb3_vec_env import ScoringVecEnv
    from recarena.simulator.vector_env import RecArenaVectorEnv

    torch.set_num_threads(1)
    split = leave_one_out(load_dataset("ml-100k"))
    train = split.train_dataset()
    kit = build_user_kit(train, seed=0, validation=split.valid)
    pool = CandidatePool(train, build_recommender("itemknn", {"seed": 0, "progress": False}).fit(train))
    pool.of(range(train.n_users))  # every user's candidates loaded once, before any clock
    config = EnvConfig(slate_size=10, max_pages=5, interview=False, reaction_info=False)
    n, steps = args.envs, args.steps
    rng = np.random.default_rng(0)

    raw = RecArenaVectorEnv(kit, n, config)
    raw.reset(seed=0)
    fixed = [raw.action_space.sample() for _ in range(64)]

    def raw_fixed() -> int:
        for t in range(steps):
            raw.step(fixed[t % len(fixed)])
        return n * steps

    def raw_random() -> int:
        for _ in range(steps):
            raw.step(raw.action_space.sample())
        return n * steps

    scoring = VecMonitor(ScoringVecEnv(RecArenaVectorEnv(kit, n, config), pool))
    scoring.seed(0)
    scoring.reset()

    def scoring_random() -> int:
        for _ in range(steps):
            scoring.step(rng.uniform(-1, 1, (n, len(FEATURES))).astype(np.float32))
        return n * steps

    policy = PPO("MlpPolicy", scoring, seed=0, device="cpu", policy_kwargs={"net_arch": [64, 64]})
    observation = scoring.reset()

    def scoring_policy() -> int:
        nonlocal observation
        for _ in range(steps):
            observation, *_ = scoring.step(policy.predict(observation)[0])
        return n * steps

    def ppo_learning() -> int:
        venv = VecMonitor(ScoringVecEnv(RecArenaVectorEnv(kit, n, config), pool))
        model = PPO("MlpPolicy", venv, n_steps=32, batch_size=256, n_epochs=10, learning_rate=1e-3, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [64, 64], "log_std_init": -1.0})  # fmt: skip
        model.learn(n * steps)
        return model.num_timesteps

    dummy = DummyVecEnv([lambda: SlateScoringEnv(RecArenaEnv(kit, config), pool) for _ in range(n)])
    dummy.seed(0)
    dummy.reset()
    dummy_steps = max(steps // 4, 10)  # the slow path: fewer steps for the same wall time

    def dummy_random() -> int:
        for _ in range(dummy_steps):
            dummy.step(rng.uniform(-1, 1, (n, len(FEATURES))).astype(np.float32))
        return n * dummy_steps

    figures = {}
    for name, run in (("raw vector env, fixed slates", raw_fixed), ("raw vector env, random slates", raw_random),
                      ("scoring env (SB3 VecEnv), random actions", scoring_random),
                      ("scoring env, actions from an SB3 policy (no learning)", scoring_policy), ("SB3 PPO learning on the scoring env", ppo_learning),
                      ("SB3 DummyVecEnv of single scoring envs, random actions", dummy_random)):  # fmt: skip
        figures[name] = timed(run, args.repeats)
        print(f"{name:<58} {figures[name]:>10,.0f} pages/s", flush=True)
    base = figures["raw vector env, fixed slates"]
    print("\nratio to the raw vector env (fixed slates):")
    for name, rate in figures.items():
        print(f"  {name:<58} {rate / base:6.3f}")
    sb3 = figures["SB3 PPO learning on the scoring env"]
    print(f"\nSB3 PPO learning / raw vector env: {sb3 / base:.3f} ({sb3:,.0f} against {base:,.0f} pages/s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"envs": n, "steps": steps, "repeats": args.repeats, "pages_per_second": figures,
                                    "ratio_to_raw": {k: v / base for k, v in figures.items()},
                                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()}}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
