"""Scale: statistical users' A/B sessions per second in this process and on Ray with 1 and 2 workers
(same events everywhere), on a synthetic catalogue (the driver writes every session to the SQLite event store).

    .venv/bin/python benchmarks/scale.py --users 20000 --sessions-users 4000

The baseline is the local backend measured in the same run. Ray's figures include shipping the
world (kit and recommender) to the workers once per run and the driver writing every session to
SQLite; a local Ray on 2 cores cannot beat one process by much, the point is identical events and
the overhead of the hand-off, which a cluster amortises over many nodes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

from recarena.agents.kit import build_user_kit
from recarena.recommenders import build_recommender
from recarena.scenarios.ab_test import ABConfig, World, run_ab
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic
from recarena.simulator.events import EventStore


def build_world(users: int, items: int, seed: int) -> tuple[World, float]:
    started = time.perf_counter()
    dataset = generate_synthetic(SyntheticConfig(n_users=users, n_items=items, mean_interactions=20, seed=seed))
    split = leave_one_out(dataset)
    train = split.train_dataset()
    kit = build_user_kit(train, seed=seed)
    recommenders = {"pop": build_recommender("pop").fit(train), "itemknn": build_recommender("itemknn").fit(train)}
    return World(dataset, split, kit, recommenders), time.perf_counter() - started


def events_of(out: Path):
    with EventStore(out / "events.sqlite") as store:
        frame = store.impressions()
    return frame[["arm", "user", "page", "position", "item", "watched", "rating"]].sort_values(["arm", "user", "page", "position"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="synthetic users in the world")
    parser.add_argument("--items", type=int, default=2_000, help="synthetic items")
    parser.add_argument("--sessions-users", type=int, default=4_000, help="users per arm in the A/B test")
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    world, world_s = build_world(args.users, args.items, args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = ABConfig(arms="pop,itemknn", users=args.sessions_users, pages=args.pages, slate_size=10, bootstrap=100, quotes=0,
                        explore=0.0, progress=False, html=False, seed=args.seed, out=Path(folder) / "local")  # fmt: skip
        variants = [("local", 1), ("ray", 1), ("ray", 2)]
        reference = None
        for backend, workers in variants:
            config = dataclasses.replace(base, backend=backend, workers=workers, out=Path(folder) / f"{backend}-{workers}")
            startup = 0.0
            if backend == "ray":
                import ray

                started = time.perf_counter()
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
                startup = time.perf_counter() - started
            started = time.perf_counter()
            results = run_ab(config, world)
            seconds = time.perf_counter() - started
            if backend == "ray":
                ray.shutdown()
            sessions = sum(a["users"] for a in results["arms"].values())
            events = events_of(config.out)
            reference = events if reference is None else reference
            rows.append((f"{backend} ({workers} worker{'s' if workers > 1 else ''})" if backend == "ray" else "local (1 process)",
                         sessions, startup, seconds, sessions / seconds, len(events), events.equals(reference)))  # fmt: skip
            print(f"{rows[-1][0]}: {rows[-1][4]:.0f} sessions/s", file=sys.stderr)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    baseline = rows[0][4]
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    print(f"## Scale: A/B sessions of statistical users, local and on Ray\n\nCommand: `{command}`  ")
    print(f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, Python {platform.python_version()}; world of {args.users:,} "
          f"synthetic users x {args.items:,} items built in {world_s:.1f} s; peak RSS of the driver {peak_gb:.1f} GB.\n")  # fmt: skip
    print("| backend | sessions | Ray start s | run s (world shipped, sessions, stored) | sessions/s | x local | impressions | events equal local |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, sessions, startup, seconds, rate, impressions, same in rows:
        print(f"| {name} | {sessions:,} | {startup:.1f} | {seconds:.1f} | {rate:,.0f} | {rate / baseline:.2f} | {impressions:,} | {'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
