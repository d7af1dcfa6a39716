"""Held-out likelihood of the users' models (issue 18): today's static user against the users with dynamics.

    python benchmarks/user_dynamics_likelihood.py --seed 0

ml-100k, leave-one-out by time. The static preference model (today's statistical user) is fitted
on the training part, and the users' dynamics on the **validation** part only (`fit_dynamics`:
every variant and recency decay, chosen by out-of-fold validation likelihood). Every variant is
then scored on the **test** part's next items (each user's history known before the test item:
training and validation), against 50 random never-had items: the mean log-probability of the real
next item and the AUC, beside the static user and a popularity-only baseline measured in the same
run. The test part plays no part in any choice; it is only read here, after fitting.

The agreement of simulated A/B verdicts with reality is `recarena agreement` (its figures are in
BENCHMARKS.md too).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from recarena.agents.dynamics import fit_dynamics, next_item_fit, next_item_pages, next_item_values
from recarena.agents.preferences import PreferenceConfig, fit_preferences
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/user_dynamics_likelihood.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset)
    train = split.train_dataset()
    preferences = fit_preferences(train, PreferenceConfig(seed=args.seed))
    dynamics, report = fit_dynamics(train, split.valid, preferences)
    known_before_test = dataset.with_interactions(split.known_before("test"))
    pages = next_item_pages(dynamics, preferences, known_before_test, split.test, 50, np.random.default_rng(args.seed))
    fits = {}
    baseline_values = next_item_values(dynamics, pages)
    ll, auc = next_item_fit(baseline_values, {"popularity": 1.0})
    fits["popularity only (baseline)"] = {"weights": {"popularity": 1.0}, "test": {"log_likelihood": ll, "auc": auc}}
    for name, fit in report.variants.items():
        decayed = replace(dynamics, config=replace(dynamics.config, recency_decay=fit.recency_decay or 1.0))
        test_ll, test_auc = next_item_fit(next_item_values(decayed, pages), fit.weights)
        fits[name] = {"weights": fit.weights, "valid_out_of_fold": {"log_likelihood": fit.log_likelihood, "auc": fit.auc},
                      "test": {"log_likelihood": test_ll, "auc": test_auc}}  # fmt: skip
    print(f"{'variant':26s} {'valid LL':>9s} {'valid AUC':>9s} {'test LL':>8s} {'test AUC':>8s}")
    for name, fit in fits.items():
        valid = fit.get("valid_out_of_fold", {})
        print(f"{name + (' (chosen)' if name == report.chosen else ''):26s} {valid.get('log_likelihood', float('nan')):9.3f} "
              f"{valid.get('auc', float('nan')):9.3f} {fit['test']['log_likelihood']:8.3f} {fit['test']['auc']:8.3f}")
    static, chosen = fits["static"]["test"], fits[report.chosen]["test"]
    print(f"chosen {report.chosen}: test log-likelihood {chosen['log_likelihood'] - static['log_likelihood']:+.3f} nats per next item "
          f"against the static user; AUC {static['auc']:.3f} -> {chosen['auc']:.3f}; weights {report.variants[report.chosen].weights}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"fits": fits, "chosen": report.chosen, "seconds": time.perf_counter() - started}, indent=1, default=float))


if __name__ == "__main__":
    main()
