"""Throughput of the statistical user: vectorised pages vs one user at a time, static taste vs dynamics.

    .venv/bin/python benchmarks/statistical_users.py [--users 100000] [--slate 10]

Prints user-pages per second for `StatisticalBehaviour.decide` over a batch of
users (watches, ratings, leaving) for the users with dynamics (recent items and
popularity; fitted on ml-100k's leave-one-out validation part) and for today's static
users (the same kit without its dynamics), beside the per-user
`StatisticalUser.view_page` loop, all measured in the same run.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from recarena.agents.contract import SessionContext
from recarena.agents.kit import build_user_kit
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="user-pages per vectorised batch")
    parser.add_argument("--slate", type=int, default=10)
    parser.add_argument("--loop-pages", type=int, default=2_000, help="pages for the per-user loop")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    data = load_dataset("ml-100k")
    started = time.perf_counter()
    split = leave_one_out(data)
    kit = build_user_kit(split.train_dataset(), seed=0, validation=split.valid)
    print(f"profiles + preference model + dynamics on ml-100k: {time.perf_counter() - started:.1f} s "
          f"(chosen: {kit.dynamics_report.chosen})")

    rng = np.random.default_rng(0)
    users = rng.integers(0, data.n_users, args.users)
    items = rng.integers(0, data.n_items, (args.users, args.slate))
    pages = rng.integers(0, 5, args.users)
    # Recent items as a session has them: the last real ones, then a few simulated watches.
    recent = kit.behaviour.recent_of(users, [rng.integers(0, data.n_items, int(k)).tolist() for k in rng.integers(0, 4, args.users)])
    rates = {}
    for name, behaviour, moved in (("static", kit.static().behaviour, None), ("dynamic", kit.behaviour, recent)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            outcome = behaviour.decide(rng, users, items, pages, recent=moved)
            best = min(best, time.perf_counter() - started)
        rates[name] = args.users / best
    vectorised = rates["dynamic"]

    loop_users = [kit.statistical_user(int(u), np.random.default_rng(int(u))) for u in users[: args.loop_pages]]
    started = time.perf_counter()
    for user, page in zip(loop_users, items[: args.loop_pages]):
        user.start_session(SessionContext())
        user.view_page(page.tolist())
    loop = args.loop_pages / (time.perf_counter() - started)
    print(
        f"slate {args.slate}: vectorised, users with dynamics {vectorised:,.0f} user-pages/s ({args.users:,} at once); "
        f"static users {rates['static']:,.0f} user-pages/s (dynamics cost {rates['static'] / vectorised:.1f}x); "
        f"per-user loop (with dynamics) {loop:,.0f} user-pages/s, vectorised/loop {vectorised / loop:.0f}x; "
        f"watch rate {outcome.watched.mean():.3f}, leave rate {outcome.leave.mean():.3f}"
    )


if __name__ == "__main__":
    main()
