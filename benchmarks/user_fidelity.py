"""Fidelity of the three user kinds on ml-100k, side by side, with baselines from the same run.

    .venv/bin/python benchmarks/user_fidelity.py [--llm embedded] [--llm-users 20] [--out runs/fidelity.json]

The users are built from a random 80% of each user's ratings; the hybrid user's
weights are fitted on a further 10% (validation); the checks use the last 10%
(test), so nothing evaluated reaches a profile, a preference model or a weight.
The LLM user is also checked calibrated alone: a temperature and a bias on each of its
decisions, fitted on the same validation examples, and no preference model.
The statistical user is checked on 200 users and, for a like-for-like row, on
the same small sample as the LLM kinds (LLM calls are the cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from recarena.agents.calibration import fit_blend, fit_llm_alone, gather_examples
from recarena.agents.fidelity import FidelityConfig, fidelity_report
from recarena.agents.kit import build_user_kit
from recarena.agents.llm import LLMConfig, make_llm
from recarena.scenarios.contract import check_llm_training_data
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import random_holdout


def row(kind: str, report: dict, seconds: float) -> str:
    d = report["discrimination"]["1:1"]
    r = report["rating"]
    return (
        f"| {kind} | {report['users']} | {d['simulated']['f1']:.3f} [{d['simulated']['f1_ci95'][0]:.3f}, {d['simulated']['f1_ci95'][1]:.3f}] | "
        f"{d['simulated_tuned_threshold']['f1']:.3f} | {d['random_same_rate']['f1']:.3f} | {d['popularity_same_count']['f1']:.3f} | {d['popularity_threshold']['f1']:.3f} | "
        f"{d['simulated']['auc']:.3f} | {d['popularity_same_count']['auc']:.3f} | "
        f"{r['simulated']['rmse']:.3f} | {r['item_mean']['rmse']:.3f} | {r['wasserstein_simulated_vs_real']:.3f} | {seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llm", default="embedded", help="LLM backend string (embedded, embedded:adapter=FOLDER of an adapter tuned with "
                        "`recarena tune-llm --split fidelity`, openai:MODEL@URL)")
    parser.add_argument("--llm-users", type=int, default=20, help="users checked for the LLM kinds")
    parser.add_argument("--calibration-users", type=int, default=30)
    parser.add_argument("--cache", default="runs/llm-cache.sqlite")
    parser.add_argument("--out", default="runs/user_fidelity.json")
    args = parser.parse_args()
    data = load_dataset("ml-100k")
    split = random_holdout(data, valid_fraction=0.1, test_fraction=0.1, seed=0)
    check_llm_training_data([args.llm], split.train_dataset())  # a tuned adapter must not have seen these held-out parts
    kit = build_user_kit(split.train_dataset(), seed=0)
    llm = make_llm(args.llm, LLMConfig(cache_path=Path(args.cache), progress=False))
    small = FidelityConfig(ratios=(1, 3), max_users=args.llm_users, max_positives=4, max_ratings=5, seed=0)
    reports, rows = {}, []

    def run(kind: str, make_user, config: FidelityConfig) -> None:
        started = time.perf_counter()
        reports[kind] = fidelity_report(make_user, split, config)
        rows.append(row(kind, reports[kind], time.perf_counter() - started))
        print(rows[-1], flush=True)

    print(f"machine: {platform.machine()}, python {platform.python_version()}, llm {args.llm}")
    print("| user kind | users | F1 1:1 [95% CI] | F1 1:1, own threshold tuned on validation | F1 random, same yes-rate | F1 popularity, same count | F1 popularity threshold | AUC | popularity AUC | rating RMSE | item-mean RMSE | W1 ratings | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    run("statistical", lambda u: kit.statistical_user(u, np.random.default_rng(u)), FidelityConfig(max_users=200, progress=False))
    run(f"statistical (same {args.llm_users} users)", lambda u: kit.statistical_user(u, np.random.default_rng(u)), small)
    run(f"LLM ({args.llm})", lambda u: kit.llm_user(u, np.random.default_rng(u), llm), small)
    started = time.perf_counter()
    examples = gather_examples(kit, split.valid, llm, n_users=args.calibration_users, positives_per_user=3, negatives=3)
    print(f"calibration examples: {time.perf_counter() - started:.0f} s")
    # The LLM user's own scale, fitted on the same validation examples as the hybrid's blend: still no preference model.
    alone = fit_llm_alone(examples)
    print(f"LLM-alone calibration: watch a={alone.watch_llm:.3f} c={alone.watch_bias:.3f}, "
          f"rating a={alone.rating_llm:.3f} biases {[round(b, 3) for b in alone.rating_bias]}; "
          f"NLL {json.dumps(alone.fitted_on['watch_nll'])} rating NLL {json.dumps(alone.fitted_on['rating_nll'])}")
    run(f"LLM calibrated alone ({args.llm})", lambda u: kit.hybrid_user(u, np.random.default_rng(u), llm, alone), small)
    reports["llm_alone_blend"] = dict(alone.__dict__)
    blend = fit_blend(examples)
    print(f"hybrid calibration: weights watch a={blend.watch_llm:.3f} b={blend.watch_preference:.3f} "
          f"c={blend.watch_bias:.3f}, rating a={blend.rating_llm:.3f} b={blend.rating_preference:.3f}; "
          f"watch effect (weight x spread) {json.dumps(blend.fitted_on['watch_effect'])}; NLL {json.dumps(blend.fitted_on['watch_nll'])} "
          f"rating NLL {json.dumps(blend.fitted_on['rating_nll'])}")
    run(f"hybrid ({args.llm})", lambda u: kit.hybrid_user(u, np.random.default_rng(u), llm, blend), small)
    reports["hybrid_blend"] = {k: v for k, v in blend.__dict__.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(reports, indent=1, default=str))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
