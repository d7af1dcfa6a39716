"""Throughput of the statistical user: vectorised pages vs one user at a time.

    .venv/bin/python benchmarks/statistical_users.py [--users 100000] [--slate 10]

Prints user-pages per second for `StatisticalBehaviour.decide` over a batch of
users (watches, ratings, leaving) beside the per-user `StatisticalUser.view_page`
loop measured in the same run, on ml-100k's fitted preference model.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from recarena.agents.contract import SessionContext
from recarena.agents.kit import build_user_kit
from recarena.simulator.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="user-pages per vectorised batch")
    parser.add_argument("--slate", type=int, default=10)
    parser.add_argument("--loop-pages", type=int, default=2_000, help="pages for the per-user loop")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    data = load_dataset("ml-100k")
    started = time.perf_counter()
    kit = build_user_kit(data, seed=0)
    print(f"profiles + preference model on ml-100k: {time.perf_counter() - started:.1f} s")

    rng = np.random.default_rng(0)
    users = rng.integers(0, data.n_users, args.users)
    items = rng.integers(0, data.n_items, (args.users, args.slate))
    pages = rng.integers(0, 5, args.users)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        outcome = kit.behaviour.decide(rng, users, items, pages)
        best = min(best, time.perf_counter() - started)
    vectorised = args.users / best

    loop_users = [kit.statistical_user(int(u), np.random.default_rng(int(u))) for u in users[: args.loop_pages]]
    started = time.perf_counter()
    for user, page in zip(loop_users, items[: args.loop_pages]):
        user.start_session(SessionContext())
        user.view_page(page.tolist())
    loop = args.loop_pages / (time.perf_counter() - started)
    print(
        f"slate {args.slate}: vectorised {vectorised:,.0f} user-pages/s ({args.users:,} at once), "
        f"per-user loop {loop:,.0f} user-pages/s, ratio {vectorised / loop:.0f}x; "
        f"watch rate {outcome.watched.mean():.3f}, leave rate {outcome.leave.mean():.3f}"
    )


if __name__ == "__main__":
    main()
