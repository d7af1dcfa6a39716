"""`recarena tune-llm` recipe variants, each measured on the same held-out validation questions.

    python benchmarks/tune_llm_variants.py --split fidelity --valid-users 300 --out runs/tune-variants

Each variant is the default recipe with a few settings changed (`VARIANTS`); it is trained by the
scenario itself (`run_tune_llm`, so its manifest holds the command that makes it again) on the split's
training part, and measured on the split's validation part: the held-out item (Yes, and its rating)
against ``--valid-negatives`` never-had items (No) of ``--valid-users`` users, before training and
every ``--validate-every`` steps. Popularity's AUC and the item mean's RMSE on the same questions stand
beside them. A variant is **chosen by validation likelihood** (the watch and rating log losses, summed),
never by a test figure; the test part is not read here. CUDA with bf16 is used when present (that is
where trying many variants is cheap); ``--budget-seconds`` stops starting new variants when the time
left is shorter than the last one took, scaled by its steps.

Steps follow the data: a variant with more users or questions gets proportionally more steps than the
default recipe's (600 users, about one packed sequence each), and ``passes`` multiplies them.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from recarena.scenarios.tune_llm.scenario import TuneLLMConfig, run_tune_llm

DEFAULT = TuneLLMConfig()
TRAINING_USERS = {"ml-100k": 943}
"""Users a variant with ``users: 0`` (all of them) samples from, for its step count (at most)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "all-layers": {"layers": 0},
    "all-users": {"users": 0},
    "two-passes": {"passes": 2},
    "targets-6": {"targets": 6},
    "negatives-4": {"negatives": 4},
    "all-users-targets-6-all-layers": {"users": 0, "targets": 6, "layers": 0},
    # Around the best so far (all layers, H200 2026-12-01: validation AUC 0.901 against popularity's 0.895), for the
    # next GPU run; not yet measured.
    "all-layers-two-passes": {"layers": 0, "passes": 2},
    "all-layers-all-users": {"layers": 0, "users": 0},
    "all-layers-rank-32": {"layers": 0, "rank": 32, "alpha": 64.0},
    "all-layers-lr-1e-3": {"layers": 0, "lr": 1e-3},
}
"""Name -> the settings changed from the default recipe (``passes``: times each packed sequence is seen)."""


def steps_of(changes: dict[str, Any], dataset: str, scale_all: float = 1.0) -> int:
    """Optimiser steps for `changes`: the default recipe's, scaled by users, questions per user and passes (and
    `scale_all`, for smoke runs)."""
    users = changes.get("users", DEFAULT.users) or TRAINING_USERS.get(dataset, DEFAULT.users)
    targets, negatives = changes.get("targets", DEFAULT.targets), changes.get("negatives", DEFAULT.negatives)
    questions = targets * (negatives + 2)  # per target: the Yes, its negatives and the rate question
    default_questions = DEFAULT.targets * (DEFAULT.negatives + 2)
    scale = users / DEFAULT.users * questions / default_questions * changes.get("passes", 1)
    return max(1, math.ceil(DEFAULT.steps * scale * scale_all))


def config_of(name: str, changes: dict[str, Any], args: argparse.Namespace) -> TuneLLMConfig:
    settings = {k: v for k, v in changes.items() if k != "passes"}
    return TuneLLMConfig(dataset=args.dataset, seed=args.seed, split=args.split, out=args.out / name, progress=args.progress,
                         steps=steps_of(changes, args.dataset, args.steps_scale), valid_users=args.valid_users,
                         validate_every=args.validate_every, **settings)  # fmt: skip


def summary_of(name: str, changes: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    manifest = results["manifest"]
    validation, curve = manifest["validation"], manifest["training"]["curve"]
    last = validation["curve"][-1]
    steps = [b["seconds"] - a["seconds"] for a, b in zip(curve, curve[1:])]
    return {"variant": name, "changes": changes, "adapter": results["adapter"], "command": manifest["run"]["command"],
            "device": manifest["base"]["device"], "dtype": manifest["base"]["dtype"], "steps": manifest["training"]["steps"],
            "examples": manifest["data"]["examples"], "training_seconds": manifest["run"]["seconds"],
            "median_step_seconds": round(statistics.median(steps), 4) if steps else None,
            "validation": last, "validation_curve": validation["curve"], "baselines": validation["baselines"],
            "validation_nll": round(last["watch_log_loss"] + (last.get("rating_log_loss") or 0.0), 6)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", choices=("loo", "fidelity"), default="fidelity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--valid-users", type=int, default=300, help="validation users (the same questions for every variant)")
    parser.add_argument("--validate-every", type=int, default=50)
    parser.add_argument("--budget-seconds", type=float, default=math.inf, help="start no variant that would end after this")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every variant's steps (a smoke run: 0.02)")
    parser.add_argument("--keep", type=Path, default=None, help="copy the chosen variant's adapter folder here")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=Path("runs/tune-variants"))
    args = parser.parse_args()
    started, rows, skipped, per_step = time.perf_counter(), [], [], None
    for name in args.variants:
        changes = VARIANTS[name]
        config = config_of(name, changes, args)
        elapsed = time.perf_counter() - started
        if per_step is not None and elapsed + per_step * config.steps > args.budget_seconds:
            skipped.append(name)
            continue
        began = time.perf_counter()
        rows.append(summary_of(name, changes, run_tune_llm(config)))
        per_step = (time.perf_counter() - began) / config.steps * 1.2
        row = rows[-1]
        print(f"{name}: {row['steps']} steps, {row['training_seconds']:.0f} s training; validation AUC {row['validation']['watch_auc']} "
              f"(popularity {row['baselines']['popularity_watch_auc']}), RMSE {row['validation'].get('rating_rmse')} "
              f"(item mean {row['baselines']['item_mean_rating_rmse']}), NLL {row['validation_nll']}", flush=True)  # fmt: skip
        write(args, rows, skipped, started)
    chosen = min(rows, key=lambda r: r["validation_nll"]) if rows else None
    write(args, rows, skipped, started, chosen)
    print(f"{'variant':34s} {'steps':>5s} {'train s':>8s} {'AUC':>6s} {'pop':>6s} {'RMSE':>6s} {'mean':>6s} {'NLL':>7s}")
    for r in rows:
        v, b = r["validation"], r["baselines"]
        print(f"{r['variant']:34s} {r['steps']:5d} {r['training_seconds']:8.0f} {v['watch_auc']:6.3f} {b['popularity_watch_auc']:6.3f} "
              f"{v.get('rating_rmse') or float('nan'):6.3f} {b['item_mean_rating_rmse'] or float('nan'):6.3f} {r['validation_nll']:7.4f}")  # fmt: skip
    if skipped:
        print(f"not run (budget): {', '.join(skipped)}")
    if chosen:
        print(f"chosen by validation likelihood: {chosen['variant']} ({chosen['adapter']})")
        if args.keep:
            shutil.copytree(chosen["adapter"], args.keep / Path(chosen["adapter"]).name, dirs_exist_ok=True)


def write(args: argparse.Namespace, rows: list[dict[str, Any]], skipped: list[str], started: float, chosen: dict | None = None) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"split": args.split, "valid_users": args.valid_users, "seed": args.seed, "variants": rows, "skipped": skipped,
               "chosen_by_validation_nll": chosen and chosen["variant"], "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    (args.out / "variants.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
