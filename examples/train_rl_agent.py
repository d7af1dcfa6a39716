"""Train an RL agent (PPO, Stable-Baselines3) against statistical users, then compare it with the recommender it
started from, popularity and random on held-out users, in the same run.

    python examples/train_rl_agent.py --steps 60000 --seed 0 --out runs/rl      # 1-2 minutes on 2 cores

(needs the ``rl`` extra: ``pip install -e '.[rl]'``; ``make setup`` installs it).

1. ml-100k is split leave-one-out by time. The base recommender (``--base``, BPR by default), pop and random are
   fitted on the training part (early stopping on validation); the users' kit is built on the same training part,
   with its dynamics fitted on validation. The test items reach nothing.
2. The users are split (stream ``RL_USERS``) into training users and held-out evaluation users
   (``--eval-fraction``). The agent never meets an evaluation user while it learns.
3. The agent reranks the base recommender's top candidates (`recarena.simulator.rl`: its action is a weight per
   candidate feature; the zero action is the base's own slate) and learns with PPO in
   `recarena.simulator.sb3_vec_env.ScoringVecEnv`, ``--envs`` sessions stepped at once in the vector env.
4. The learning curve (``learning_curve.png``): the watches per finished training session in each rollout
   (the exploring policy), and every ``--curve-every`` steps the greedy agent on ``--curve-users`` training users
   beside the base and pop on the same sessions (stream ``RL_CURVE``).
5. Evaluation: every held-out user meets each policy in ``--repeats`` sessions, pass r seeded by
   ``RL_EVALUATION(repeat=r)``, so every policy meets the same users with the same luck (paired): the trained
   agent (greedy), the agent before training, the base, pop, random and, for reference, a hand-set rule (the
   base plus full weight on recent similarity, the feature the agent leans on). Watches per session per user, their
   mean with a 95% bootstrap interval, and the agent's paired differences with pop and the base with 95%
   bootstrap intervals (stream ``RL_BOOTSTRAP``) and a paired t p-value.

Writes ``OUT/results.json`` and ``OUT/learning_curve.png`` and prints the table and who wins.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np


RULE = "rule: base + recent similarity"
"""A hand-set reranker evaluated beside the agent (see `main`)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=60_000, help="environment steps (pages) the agent learns from")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (models, users, the agent, evaluation)")
    parser.add_argument("--out", type=Path, default=Path("runs/rl"), help="folder for results.json and learning_curve.png")
    parser.add_argument("--dataset", default="ml-100k", help="any dataset recarena loads")
    parser.add_argument("--base", default="bpr", help="the recommender the agent reranks (a registry name)")
    parser.add_argument("--envs", type=int, default=64, help="sessions stepped together while learning")
    parser.add_argument("--slate-size", type=int, default=10, help="items per page")
    parser.add_argument("--pages", type=int, default=5, help="pages per session at most")
    parser.add_argument("--candidates", type=int, default=100, help="the base's top items the agent reranks per user")
    parser.add_argument("--eval-fraction", type=float, default=0.2, help="share of users held out for evaluation")
    parser.add_argument("--repeats", type=int, default=5, help="evaluation sessions per held-out user and policy")
    parser.add_argument("--curve-every", type=int, default=6_144, help="steps between greedy checks on training users")
    parser.add_argument("--curve-users", type=int, default=200, help="training users of each greedy check")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the policy (a small MLP)")
    return parser.parse_args(argv)


def build_world(args: argparse.Namespace) -> dict[str, Any]:
    """Split, models, users' kit and the candidate pools, all on the training part; the users split in two."""
    from recarena.agents.kit import build_user_kit
    from recarena.recommenders import build_recommender
    from recarena.simulator.data import load_dataset
    from recarena.simulator.data.splits import leave_one_out
    from recarena.simulator.data.streams import RL_USERS
    from recarena.simulator.rl import CandidatePool, ScoringConfig

    started = time.perf_counter()
    split = leave_one_out(load_dataset(args.dataset))
    train = split.train_dataset()
    kit = build_user_kit(train, seed=args.seed, validation=split.valid)
    scoring = ScoringConfig(candidates=args.candidates)
    pools = {}
    for name in dict.fromkeys([args.base, "pop", "random"]):
        model = build_recommender(name, {"seed": args.seed, "progress": False}).fit(train, valid=split.valid)
        pools[name] = CandidatePool(train, model, scoring)
    order = RL_USERS.generator(args.seed).permutation(train.n_users)
    n_eval = int(round(args.eval_fraction * train.n_users))
    return {"kit": kit, "pools": pools, "eval_users": np.sort(order[:n_eval]), "train_users": np.sort(order[n_eval:]),
            "seconds": time.perf_counter() - started}  # fmt: skip


def greedy(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The agent's deterministic policy (the mean action), as `session_watches` calls it."""
    return lambda observation: model.predict(observation, deterministic=True)[0]


def make_learning_curve(world: dict[str, Any], env_config: Any, args: argparse.Namespace) -> Any:
    """An SB3 callback recording the training sessions' watches per rollout and the greedy agent's on training users."""
    from stable_baselines3.common.callbacks import BaseCallback

    from recarena.simulator.data.streams import RL_CURVE
    from recarena.simulator.rl import session_watches

    rng = RL_CURVE.generator(args.seed)
    users = np.sort(rng.choice(world["train_users"], size=min(args.curve_users, len(world["train_users"])), replace=False))
    seed = int(rng.integers(2**31))
    pools, kit = world["pools"], world["kit"]

    class LearningCurve(BaseCallback):
        def _on_training_start(self) -> None:
            self.rollouts: list[dict[str, float]] = []
            self.checks: list[dict[str, float]] = []
            self.references = {name: float(session_watches(kit, pools[name], env_config, users, seed).mean()) for name in (args.base, "pop")}
            self.episodes_seen = 0
            self._check()

        def _check(self) -> None:
            watches = session_watches(kit, pools[args.base], env_config, users, seed, greedy(self.model))
            self.checks.append({"steps": int(self.num_timesteps), "greedy_watches": float(watches.mean())})
            print(f"  {self.num_timesteps:>8} steps: greedy agent {watches.mean():.2f} watches/session on {len(users)} training users "
                  f"({args.base} {self.references[args.base]:.2f}, pop {self.references['pop']:.2f})", flush=True)  # fmt: skip

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            episodes = list(self.model.ep_info_buffer)  # the last 100 finished sessions
            if episodes:
                self.rollouts.append({"steps": int(self.num_timesteps), "training_watches": float(np.mean([e["r"] for e in episodes]))})
            if self.num_timesteps // args.curve_every > (self.num_timesteps - self.model.n_steps * self.model.n_envs) // args.curve_every:
                self._check()

        def _on_training_end(self) -> None:
            if not self.checks or self.checks[-1]["steps"] != self.num_timesteps:
                self._check()

    return LearningCurve()


def evaluate(world: dict[str, Any], env_config: Any, policies: dict[str, tuple[str, Any]], args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Each policy's mean watches per session per held-out user, over ``--repeats`` paired passes."""
    from recarena.simulator.data.streams import RL_EVALUATION
    from recarena.simulator.rl import session_watches

    users = world["eval_users"]
    seeds = [int(RL_EVALUATION.generator(args.seed, repeat=r).integers(2**31)) for r in range(args.repeats)]
    return {name: np.mean([session_watches(world["kit"], world["pools"][pool], env_config, users, s, policy) for s in seeds], axis=0)
            for name, (pool, policy) in policies.items()}  # fmt: skip


def summarise(per_user: dict[str, np.ndarray], base: str, seed: int) -> dict[str, Any]:
    """Means with 95% bootstrap intervals; the agent against pop and against the base, paired."""
    from recarena.scenarios.comparisons import bootstrap_ci, p_value_of
    from recarena.simulator.data.streams import RL_BOOTSTRAP

    rng = RL_BOOTSTRAP.generator(seed)
    table = {}
    for name, values in per_user.items():
        means = values[rng.integers(0, len(values), size=(2000, len(values)))].mean(1)
        low, high = np.percentile(means, [2.5, 97.5])
        table[name] = {"watches_per_session": float(values.mean()), "ci95": [float(low), float(high)], "users": len(values)}
    comparisons = {}
    for control in ("pop", base, "agent before training", RULE):
        low, high = bootstrap_ci(per_user[control], per_user["agent"], "paired", rng)
        effect = float(per_user["agent"].mean() - per_user[control].mean())
        winner = "agent" if low > 0 else control if high < 0 else "no clear difference"
        comparisons[f"agent - {control}"] = {"effect": effect, "ci95": [low, high], "relative": effect / per_user[control].mean(),
                                             "p_paired_t": p_value_of(per_user[control], per_user["agent"], "paired", "t"), "winner": winner}  # fmt: skip
    return {"policies": table, "comparisons": comparisons}


def learnt_weights(actions: list[np.ndarray], max_weight: float) -> dict[str, dict[str, float]]:
    """Mean and sd of each feature's weight (action x max_weight, against the base score's 1) over the pages the agent
    was asked about in evaluation (every call covers every held-out user, the sessions already over included)."""
    from recarena.simulator.rl import FEATURES

    every = np.clip(np.concatenate(actions), -1, 1) * max_weight
    return {name: {"mean": float(every[:, f].mean()), "sd": float(every[:, f].std())} for f, name in enumerate(FEATURES)}


def plot_learning_curve(rollouts: list[dict], checks: list[dict], references: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if rollouts:
        ax.plot([r["steps"] for r in rollouts], [r["training_watches"] for r in rollouts], color="#9ab", lw=1, label="training sessions (exploring policy, last 100)")
    ax.plot([c["steps"] for c in checks], [c["greedy_watches"] for c in checks], "o-", color="#c40", label="greedy agent, training users")
    for (name, value), style in zip(references.items(), ("--", ":")):
        ax.axhline(value, color="#333", ls=style, lw=1, label=f"{name} (same sessions)")
    ax.set_ylim(0, 1.1 * max([c["greedy_watches"] for c in checks] + list(references.values())))
    ax.set_xlabel("environment steps (pages shown)")
    ax.set_ylabel("watches per session")
    ax.set_title("PPO reranking agent against statistical users")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import stable_baselines3
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from recarena.simulator.atomic import write_text_atomically
    from recarena.simulator.env import EnvConfig
    from recarena.simulator.rl import FEATURES
    from recarena.simulator.sb3_vec_env import ScoringVecEnv
    from recarena.simulator.vector_env import RecArenaVectorEnv

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"fitting {args.base}, pop, random and the users' kit on the training part of {args.dataset} ...", flush=True)
    world = build_world(args)
    config = EnvConfig(slate_size=args.slate_size, max_pages=args.pages, interview=False, reaction_info=False)
    training_config = replace(config, users=tuple(world["train_users"].tolist()))  # the held-out users never show up
    training = VecMonitor(ScoringVecEnv(RecArenaVectorEnv(world["kit"], args.envs, training_config), world["pools"][args.base]))
    model = PPO("MlpPolicy", training, n_steps=32, batch_size=256, n_epochs=10, learning_rate=1e-3, gamma=0.99, gae_lambda=0.95,
                seed=args.seed, device="cpu", verbose=0, policy_kwargs={"net_arch": [64, 64], "log_std_init": -1.0})  # fmt: skip
    print(f"{len(world['train_users'])} training users, {len(world['eval_users'])} held out; the agent before training ...", flush=True)
    before = evaluate(world, config, {"agent before training": (args.base, greedy(model))}, args)
    curve = make_learning_curve(world, config, args)
    started = time.perf_counter()
    model.learn(args.steps, callback=curve)
    learn_seconds = time.perf_counter() - started
    print(f"learnt {model.num_timesteps} steps in {learn_seconds:.0f} s; evaluating on the held-out users ...", flush=True)
    asked: list[np.ndarray] = []  # the agent's actions on the held-out sessions' pages: what it learnt to weigh

    def agent(observation: np.ndarray) -> np.ndarray:
        asked.append(greedy(model)(observation))
        return asked[-1]

    per_user = {"agent": evaluate(world, config, {"agent": (args.base, agent)}, args)["agent"], **before}
    # A hand-set reference, not a baseline the agent must beat: the base plus full weight on recent similarity, the
    # feature the agent leans on (learnt_weights); it says how much of the gain one rule of thumb already gets.
    rule = np.array([1.0 if name == "recent_similarity" else 0.0 for name in FEATURES])
    per_user |= evaluate(world, config, {args.base: (args.base, None), "pop": ("pop", None), "random": ("random", None),
                                         RULE: (args.base, lambda observation: np.tile(rule, (len(observation), 1)))}, args)  # fmt: skip
    summary = summarise(per_user, args.base, args.seed)
    plot_learning_curve(curve.rollouts, curve.checks, curve.references, args.out / "learning_curve.png")
    results = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__},
        "users": {"training": len(world["train_users"]), "evaluation": len(world["eval_users"])},
        "seconds": {"world": world["seconds"], "learning": learn_seconds},
        "learning_steps_per_second": model.num_timesteps / learn_seconds,
        **summary,
        "learning_curve": {"rollouts": curve.rollouts, "greedy_checks": curve.checks, "references": curve.references},
        "learnt_weights": learnt_weights(asked, world["pools"][args.base].config.max_weight),
    }  # fmt: skip
    write_text_atomically(args.out / "results.json", json.dumps(results, indent=2))
    print_summary(summary, args)
    return results


def print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nwatches per session, {summary['policies']['agent']['users']} held-out users x {args.repeats} sessions each (95% bootstrap CI):")
    width = max(map(len, [*summary["policies"], *summary["comparisons"]]))
    for name, row in summary["policies"].items():
        print(f"  {name:<{width}} {row['watches_per_session']:6.2f}  [{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}]")
    for name, row in summary["comparisons"].items():
        print(f"  {name:<{width}} {row['effect']:+6.2f}  [{row['ci95'][0]:+.2f}, {row['ci95'][1]:+.2f}]  ({row['relative']:+.0%}, "
              f"paired t p={row['p_paired_t']:.2g}): {row['winner']}")  # fmt: skip
    print(f"written: {args.out / 'results.json'}, {args.out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
