"""Scale: statistical users' A/B sessions per second in this process and on Ray with 1 and 2 workers
(same events everywhere), on a synthetic catalogue (the driver writes every session to the SQLite event store).

    .venv/bin/python benchmarks/scale.py --users 20000 --sessions-users 4000
    .venv/bin/python benchmarks/scale.py --population-users 20000 --rounds 2             # population rounds instead
    .venv/bin/python benchmarks/scale.py --population-users 1000000 --rounds 1 --backends local

With ``--population-users N`` it measures the Mesa population instead (statistical users, most-popular
updated after every round, every session written to a SQLite run directory): the world's build time
(synthetic data, users' kit, Population with N agents), user-sessions per second of each round on each
backend, the driver's peak RSS and whether each backend's events equal the first one's.

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

import numpy as np
import pandas as pd
from recarena.agents.kit import build_user_kit
from recarena.recommenders import build_recommender
from recarena.scenarios.ab.scenario import ABConfig, World, run_ab
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic
from recarena.simulator.events import EventStore, without_wall_clock
from recarena.simulator.parallel import start_local_ray


def build_world(users: int, items: int, seed: int) -> tuple[World, float]:
    started = time.perf_counter()
    dataset = generate_synthetic(SyntheticConfig(n_users=users, n_items=items, mean_interactions=20, seed=seed))
    split = leave_one_out(dataset)
    train = split.train_dataset()
    kit = build_user_kit(train, seed=seed)
    recommenders = {"pop": build_recommender("pop").fit(train), "itemknn": build_recommender("itemknn").fit(train)}
    return World(dataset, split, kit, recommenders), time.perf_counter() - started


def timed_ray_start(workers: int) -> float:
    """Start a local Ray with `workers` CPUs; the seconds it took (reported apart from the run)."""
    started = time.perf_counter()
    start_local_ray(workers)
    return time.perf_counter() - started


def events_of(out: Path):
    with EventStore(out / "events.sqlite") as store:
        frame = store.impressions()
    return frame[["arm", "user", "page", "position", "item", "watched", "rating"]].sort_values(["arm", "user", "page", "position"]).reset_index(drop=True)


def peak_rss_gb() -> float:
    """The driver's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def ray_workers_rss_gb() -> float:
    """Resident memory of the Ray processes started from this driver now (they are not its RUSAGE_CHILDREN)."""
    import psutil

    return sum(p.memory_info().rss for p in psutil.Process().children(recursive=True)) / 2**30


def events_fingerprint(store: EventStore) -> tuple[int, int]:
    """(impressions, hash of every impression but the wall-clock columns): compares runs without holding two frames."""
    frame = store.impressions()
    frame = without_wall_clock(frame)
    return len(frame), int(pd.util.hash_pandas_object(frame, index=False).to_numpy().sum(dtype=np.uint64))


def population_benchmark(args: argparse.Namespace, command: str) -> int:
    from recarena.agents.preferences import PreferenceConfig
    from recarena.simulator.population import Population, PopulationConfig

    started = time.perf_counter()
    dataset = generate_synthetic(SyntheticConfig(n_users=args.population_users, n_items=args.items, mean_interactions=20, seed=args.seed))
    data_s = time.perf_counter() - started
    # Fewer epochs than the default 100: the fit's quality does not change what a session costs.
    kit = build_user_kit(dataset, seed=args.seed, preference_config=PreferenceConfig(epochs=args.kit_epochs, seed=args.seed))
    kit_s = time.perf_counter() - started - data_s
    print(f"world: data {data_s:.1f} s, kit {kit_s:.1f} s, peak RSS {peak_rss_gb():.1f} GiB", file=sys.stderr)
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as folder:
        for name in args.backends.split(","):
            backend, workers = ("ray", int(name[3:] or 2)) if name.startswith("ray") else ("local", 1)
            config = PopulationConfig(rounds=args.rounds, slate_size=10, max_pages=args.pages, progress=False, backend=backend, workers=workers)
            ray_s = timed_ray_start(workers) if backend == "ray" else 0.0
            t = time.perf_counter()
            population = Population(kit, build_recommender("pop").fit(dataset), config, seed=args.seed, run_dir=Path(folder) / name)
            build_s = time.perf_counter() - t
            print(f"{name}: Population of {len(population.user_agents):,} agents built in {build_s:.1f} s, peak RSS {peak_rss_gb():.1f} GiB", file=sys.stderr)
            rounds = []
            for r in range(args.rounds):
                t = time.perf_counter()
                population.step()
                rounds.append((population.figures["sessions"], time.perf_counter() - t))
                print(f"{name}: round {r}: {rounds[-1][0]:,.0f} sessions in {rounds[-1][1]:.1f} s, peak RSS {peak_rss_gb():.1f} GiB", file=sys.stderr)
            workers_gb = ray_workers_rss_gb() if backend == "ray" else 0.0
            rss = peak_rss_gb()  # before reading the events back; a peak so far, so it covers earlier backends too
            fingerprint = events_fingerprint(population.events) if not args.no_compare else (0, 0)
            population.close()
            if backend == "ray":
                import ray

                ray.shutdown()
            reference = fingerprint if reference is None else reference
            rows.append((name, ray_s, build_s, rounds, fingerprint[0], fingerprint == reference, rss, workers_gb))
    print(f"## Scale: population rounds of statistical users, local and on Ray\n\nCommand: `{command}`  ")
    print(f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, Python {platform.python_version()}; synthetic world of "
          f"{args.population_users:,} users x {args.items:,} items: data {data_s:.1f} s, users' kit {kit_s:.1f} s "
          f"({args.kit_epochs} preference epochs); most-popular updated after every round; {args.pages} pages of 10 at most.\n")  # fmt: skip
    print("| backend | Ray start s | Population build s | round | user-sessions | round s | user-sessions/s | impressions | events equal first | driver peak RSS so far GiB | Ray workers RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for name, ray_s, build_s, rounds, impressions, same, rss, workers_gb in rows:
        for r, (sessions, seconds) in enumerate(rounds):
            print(f"| {name} | {ray_s:.1f} | {build_s:.1f} | {r} | {sessions:,.0f} | {seconds:.1f} | {sessions / seconds:,.0f} | {'-' if args.no_compare else f'{impressions:,}'} | "
                  f"{'-' if args.no_compare else 'yes' if same else 'NO'} | {rss:.1f} | {workers_gb:.1f} |")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="synthetic users in the world")
    parser.add_argument("--items", type=int, default=2_000, help="synthetic items")
    parser.add_argument("--sessions-users", type=int, default=4_000, help="users per arm in the A/B test")
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--population-users", type=int, default=0, help="measure population rounds on a synthetic world of this many users")
    parser.add_argument("--rounds", type=int, default=2, help="population rounds per backend")
    parser.add_argument("--backends", default="local,ray1,ray2", help="population backends: local, rayN (Ray with N workers)")
    parser.add_argument("--kit-epochs", type=int, default=20, help="preference-model epochs of the population's users' kit")
    parser.add_argument("--no-compare", action="store_true", help="skip reading back the events to compare backends")
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    if args.population_users:
        return population_benchmark(args, command)

    world, world_s = build_world(args.users, args.items, args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = ABConfig(arms="pop,itemknn", users=args.sessions_users, pages=args.pages, slate_size=10, bootstrap=100, quotes=0,
                        explore=0.0, progress=False, html=False, seed=args.seed, out=Path(folder) / "local")  # fmt: skip
        variants = [("local", 1), ("ray", 1), ("ray", 2)]
        reference = None
        for backend, workers in variants:
            config = dataclasses.replace(base, backend=backend, workers=workers, out=Path(folder) / f"{backend}-{workers}")
            startup = timed_ray_start(workers) if backend == "ray" else 0.0
            started = time.perf_counter()
            results = run_ab(config, world)
            seconds = time.perf_counter() - started
            if backend == "ray":
                import ray

                ray.shutdown()
            sessions = sum(a["users"] for a in results["arms"].values())
            events = events_of(config.out)
            reference = events if reference is None else reference
            rows.append((f"{backend} ({workers} worker{'s' if workers > 1 else ''})" if backend == "ray" else "local (1 process)",
                         sessions, startup, seconds, sessions / seconds, len(events), events.equals(reference)))  # fmt: skip
            print(f"{rows[-1][0]}: {rows[-1][4]:.0f} sessions/s", file=sys.stderr)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    baseline = rows[0][4]
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
