"""Probe for issue 18 (agreement of simulated A/B verdicts with reality): do users with dynamics
(`recarena.agents.dynamics`) order the six default recommenders as their real held-out NDCG@10 does?

    python benchmarks/user_dynamics_probe.py --seed 0 --models runs/probe-models

1. ml-100k, leave-one-out by time. The six default recommenders are fitted on the training part
   (validation for early stopping), saved in ``--models`` (a rerun loads them) and evaluated on
   the test part (NDCG@10 per user, full ranking): the **real order**.
2. The static preference model (today's statistical user) is fitted on the training part, and the
   users' dynamics on the **validation** part only (`fit_dynamics`: variants chosen by out-of-fold
   validation likelihood). Every variant is then scored on the test part's next items (history
   known before test), log-likelihood per user and AUC, beside the static user.
3. Each arm's first page (top 10, known items excluded) for ``--users`` users: the expected watch
   rate per user under the static and the dynamic user (position decay 0.3 log(1 + k)).
   Spearman and Kendall between the real and the simulated orders, with bootstrap intervals over
   both sides' users (`recarena.scenarios.agreement.orders`).

A probe, not the product: `recarena agreement` (issue 18) is to run full sessions with users whose
watch logit carries the dynamics.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recarena.agents.dynamics import fit_dynamics, next_item_fit, next_item_pages, recent_items
from recarena.agents.preferences import PreferenceConfig, fit_preferences
from recarena.agents.statistical import sigmoid
from recarena.recommenders import Recommender, build_recommender, history_scorer
from recarena.recommenders.evaluation import evaluate
from recarena.scenarios.agreement.orders import pair_verdicts, rank_agreement, concordance
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out

ARMS = ("random", "pop", "itemknn", "bpr", "lightgcn", "sasrec")


def fitted_arms(split, seed: int, models: Path) -> tuple[dict[str, Recommender], dict[str, np.ndarray]]:
    """Each arm fitted (or loaded) and its per-user NDCG@10 on the test part."""
    fitted, real = {}, {}
    for name in ARMS:
        path = models / name
        if (path / "recommender.json").exists():
            model = Recommender.load(path)
        else:
            model = build_recommender(name, {"seed": seed, "progress": False})
            model.fit(split.train_dataset(), valid=split.valid)
            model.save(path)
        result = evaluate(history_scorer(model, split, "test"), split, "test", [10], per_user=True)
        fitted[name], real[name] = model, result.per_user["ndcg@10"].to_numpy(float)
        print(f"{name}: real NDCG@10 {result['ndcg@10']:.4f}", flush=True)
    return fitted, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--models", type=Path, default=Path("runs/probe-models"))
    parser.add_argument("--out", type=Path, default=Path("runs/user_dynamics_probe.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset)
    models, real = fitted_arms(split, args.seed, args.models / f"seed{args.seed}")
    train = split.train_dataset()
    preferences = fit_preferences(train, PreferenceConfig(seed=args.seed))
    dynamics, report = fit_dynamics(train, split.valid, preferences)
    known_before_test = dataset.with_interactions(split.known_before("test"))
    test_pages = next_item_pages(dynamics, preferences, known_before_test, split.test, 50, np.random.default_rng(args.seed))
    fits = {}
    for name, fit in report.variants.items():
        test_ll, test_auc = next_item_fit(test_pages, fit.weights)
        fits[name] = {"weights": fit.weights, "valid_out_of_fold": {"log_likelihood": fit.log_likelihood, "auc": fit.auc},
                      "test": {"log_likelihood": test_ll, "auc": test_auc}}  # fmt: skip
        print(name, fits[name], flush=True)
    users = np.sort(np.random.default_rng(np.random.SeedSequence([7, 1])).choice(dataset.n_users, args.users, replace=False))
    recent, last_time = recent_items(train, dynamics.config.recent)
    histories = train.user_histories()
    position = 0.3 * np.log1p(np.arange(10))[None]
    simulated = {"static": {}, report.chosen: {}}
    for arm, model in models.items():
        slates = np.asarray(model.recommend(users, 10, exclude=[histories[u] for u in users]).items)
        taste = preferences.watch_logits(users, slates)
        simulated["static"][arm] = sigmoid(taste - position).mean(1)
        simulated[report.chosen][arm] = sigmoid(dynamics.logits(taste, slates, recent[users], last_time[users]) - position).mean(1)
    rng = np.random.default_rng(args.seed)
    agreement = {}
    for kind, per_user in simulated.items():
        ranks = rank_agreement(real, per_user, rng, n_boot=1000)
        pairs = pair_verdicts(real, per_user, rng, n_boot=1000)
        agreement[kind] = {**ranks.as_dict(), "pairs": concordance(pairs),
                           "watch_rate": {arm: float(v.mean()) for arm, v in per_user.items()}}  # fmt: skip
        print(kind, {k: agreement[kind][k] for k in ("spearman", "spearman_ci", "kendall", "simulated_order", "pairs", "watch_rate")}, flush=True)
    print("real order", agreement["static"]["real_order"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"real_ndcg@10": {a: float(v.mean()) for a, v in real.items()}, "fits": fits, "chosen": report.chosen,
                                    "agreement": agreement, "seconds": time.perf_counter() - started}, indent=1, default=float))  # fmt: skip


if __name__ == "__main__":
    main()
