"""Does the tuned LLM give the hybrid user taste? Statistical, LLM and hybrid users on the same held-out questions.

    python benchmarks/tuned_hybrid.py --users 100 --threads 2                      # the shipped adapter, leave-one-out
    python benchmarks/tuned_hybrid.py --split fidelity --adapter runs/tune-fid/adapter-<hash>

ml-100k, split as the adapter was tuned (`--split loo`: the shipped ``embedded:tuned`` adapter, the split `ab`
uses; `--split fidelity`: `recarena fidelity`'s per-user random hold-out, seed 0); the adapter's manifest must name
this training part, so no held-out interaction reached it. Everything below is fitted on the training part:

1. the users' kit (preference model, dynamics);
2. the hybrid blend, for the base and for the tuned LLM, calibrated on **validation** items of
   `--calibration-users` users (as `recarena ab` calibrates it): its weights say whether the LLM's logit carries
   anything beside the preference model's;
3. on **test** questions (each of `--users` users' held-out test item, and `--negatives` items it never had),
   each user kind's P(watch) as in `recarena fidelity` (``watch_probabilities``), beside popularity and random.

Reported: pooled watch AUC with a 95% bootstrap interval over users, and paired differences on the same questions
(also intervals over users): each hybrid against the statistical user, each LLM user alone against popularity.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recarena.agents.calibration import calibrate_blend
from recarena.agents.kit import build_user_kit
from recarena.agents.llm import LLMConfig, make_llm
from recarena.agents.llm.factory import SHIPPED_ADAPTER
from recarena.agents.tuning.examples import ExampleConfig
from recarena.agents.tuning.validation import HeldOut, auc, bootstrap_auc
from recarena.scenarios.contract import check_llm_training_data
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out, random_holdout


def questions_by_user(held: HeldOut) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's watch questions: the items asked about and whether the answer is Yes."""
    out: dict[int, tuple[list[int], list[bool]]] = {}
    for example in held.watch:
        items, labels = out.setdefault(example.user, ([], []))
        items.append(example.item)
        labels.append(example.answer == "Yes")
    return {user: (np.array(items), np.array(labels)) for user, (items, labels) in out.items()}


# Each user kind is paired with what it must beat: the hybrid with the statistical user it adds the LLM to, the LLM
# user alone with popularity (issue 19's target on the fidelity protocol).
PAIRED_AGAINST = {"hybrid": "statistical user", "LLM user": "popularity (baseline)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("loo", "fidelity"), default="loo")
    parser.add_argument("--adapter", type=Path, default=SHIPPED_ADAPTER, help="a tune-llm adapter folder (default: the shipped one)")
    parser.add_argument("--users", type=int, default=100, help="test users asked")
    parser.add_argument("--negatives", type=int, default=4, help="never-had items per test user")
    parser.add_argument("--calibration-users", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="of the sampled test users")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=Path("runs/tuned_hybrid-cache.sqlite"))
    parser.add_argument("--out", type=Path, default=Path("runs/tuned_hybrid.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset) if args.split == "loo" else random_holdout(dataset, 0.1, 0.1, seed=0)
    train = split.train_dataset()
    check_llm_training_data([f"embedded:adapter={args.adapter}"], train)  # the scenarios' guard: held-out items must not have reached it
    manifest = json.loads((args.adapter / "manifest.json").read_text())
    kit = build_user_kit(train, seed=0)
    held = HeldOut.build(train, split.test, ExampleConfig(users=args.users, targets=1, negatives=args.negatives, ratings=False), args.seed)
    asked = questions_by_user(held)
    users = np.concatenate([np.full(len(items), u) for u, (items, _) in asked.items()])
    items = np.concatenate([items for items, _ in asked.values()])
    labels = np.concatenate([labels for _, labels in asked.values()])

    def ask(make_user, label: str) -> np.ndarray:
        return np.concatenate([np.asarray(make_user(u).watch_probabilities(its.tolist()), dtype=float)
                               for u, (its, _) in tqdm(asked.items(), desc=label, mininterval=5)])  # fmt: skip

    scores = {"random (baseline)": np.random.default_rng(args.seed).random(len(items)), "popularity (baseline)": held.popularity[items],
              "statistical user": ask(lambda u: kit.statistical_user(u, np.random.default_rng(u)), "statistical")}  # fmt: skip
    blends = {}
    for label, spec in (("base", "embedded"), ("tuned", f"embedded:adapter={args.adapter}")):
        llm = make_llm(spec, LLMConfig(cache_path=args.cache, progress=False, n_threads=args.threads))
        blend = calibrate_blend(kit, split.valid, llm, n_users=args.calibration_users, positives_per_user=3, negatives=3, seed=0)
        blends[label] = {"watch_llm": blend.watch_llm, "watch_preference": blend.watch_preference, "watch_bias": blend.watch_bias,
                         "rating_llm": blend.rating_llm, "rating_preference": blend.rating_preference, **blend.fitted_on}  # fmt: skip
        print(f"{label} LLM: hybrid watch weights a(LLM)={blend.watch_llm:.3f} b(preference)={blend.watch_preference:.3f}; "
              f"effects {json.dumps(blend.fitted_on['watch_effect'])}; validation NLL {json.dumps(blend.fitted_on['watch_nll'])}", flush=True)
        scores[f"LLM user ({label})"] = ask(lambda u: kit.llm_user(u, np.random.default_rng(u), llm), f"LLM {label}")
        scores[f"hybrid user ({label} LLM)"] = ask(lambda u: kit.hybrid_user(u, np.random.default_rng(u), llm, blend), f"hybrid {label}")
        llm.close()

    table = {}
    for label, values in scores.items():
        row = {"auc": auc(values, labels), "ci": list(bootstrap_auc(values, labels, users, args.seed))}
        reference = next((ref for kind, ref in PAIRED_AGAINST.items() if label.startswith(kind)), None)
        if reference is not None:
            row["paired_against"] = reference
            row["minus_reference"] = row["auc"] - auc(scores[reference], labels)
            row["minus_reference_ci"] = list(bootstrap_auc(values, labels, users, args.seed, minus=scores[reference]))
        table[label] = row
    results = {"split": args.split, "adapter": str(args.adapter), "adapter_sha256": manifest["content_sha256"], "users": len(asked),
               "questions": len(items), "positives": int(labels.sum()), "seed": args.seed, "blends": blends, "table": table,
               "seconds": time.perf_counter() - started}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"held-out test items of {len(asked)} ml-100k users ({args.split} split; {int(labels.sum())} positives, "
          f"{len(items) - int(labels.sum())} never-had negatives)")
    print(f"{'scorer':34s} {'watch AUC':>10s} {'95% CI':>16s} {'paired difference [95% CI]':>52s}")
    for label, row in table.items():
        paired = (f"minus {row['paired_against']}: {row['minus_reference']:+.3f} [{row['minus_reference_ci'][0]:+.3f}, "
                  f"{row['minus_reference_ci'][1]:+.3f}]") if "minus_reference" in row else ""  # fmt: skip
        print(f"{label:34s} {row['auc']:>10.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] {paired:>52s}")
    print(f"best watch AUC: {max(table, key=lambda k: table[k]['auc'])}; seconds: {results['seconds']:.0f}; results: {args.out}")


if __name__ == "__main__":
    main()
