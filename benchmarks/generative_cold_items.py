"""Cold items: can a model recommend items it never saw in training? TIGER beside SASRec, content and chance.

Protocol (ml-100k, or any dataset path):

1. A fixed, seeded ``--cold-fraction`` of the catalog (items with at least
   ``--min-count`` interactions) is held out: every interaction with those items
   is removed before anything is fitted, so no model, validation or statistic
   ever sees them.
2. The models are fitted on the rest ("warm" data), with leave-one-out by time
   and early stopping on the validation part, as in generative_vs_sasrec.py.
3. **Cold queries**: for every user who had a held-out item, their first one in
   time is the target and their warm interactions before it are the history.
   Each model ranks the held-out items for that history; HR@10 and NDCG@10
   within the ``N`` held-out items (chance HR@10 is 10 / N).
4. **Warm queries at the same difficulty**: each leave-one-out test target is
   ranked among itself and ``N - 1`` warm items the user has not had (sampled,
   seeded), so the cold and warm figures stand side by side. The full-ranking
   HR@10 / NDCG@10 on the warm split are given too.

Baselines in the same run: chance (random scores) and content (cosine between
an item's MiniLM text vector and the mean vector of the user's last 20 items),
which needs no training at all and is the bar a content-based generative model
has to clear on cold items. SASRec is an ID model: its held-out items keep their
initial embeddings, so it shows what an ID model does with them.

    python benchmarks/generative_cold_items.py --seeds 0 1 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from fitting import fit_timed
from generative_vs_sasrec import CONFIGS

from recarena.recommenders import evaluate_recommender
from recarena.recommenders.generative.item_text import content_vectors
from recarena.simulator.data import Dataset, load_dataset
from recarena.simulator.data.splits import Split, leave_one_out

MODELS = ("tiger", "sasrec")
K = 10
CONTENT_HISTORY = 20


def hold_out_items(dataset: Dataset, fraction: float, min_count: int, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of the catalog, drawn among items with at least `min_count` interactions."""
    counts = np.bincount(dataset.interactions["item"].to_numpy(), minlength=dataset.n_items)
    eligible = np.flatnonzero(counts >= min_count)
    size = max(K + 1, round(fraction * dataset.n_items))
    return np.sort(np.random.default_rng(seed).choice(eligible, size=min(size, len(eligible)), replace=False))


def cold_queries(dataset: Dataset, cold: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Per user with a held-out item: (user, warm items before their first held-out one, that item)."""
    frame = dataset.interactions  # sorted by time, ties in source order
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    is_cold = np.isin(items, cold)
    first_cold: dict[int, int] = {}
    for row in np.flatnonzero(is_cold):
        first_cold.setdefault(int(users[row]), int(row))
    out_users, histories, targets = [], [], []
    for user, row in sorted(first_cold.items()):
        before = np.flatnonzero((users[:row] == user) & ~is_cold[:row])
        if len(before):
            out_users.append(user)
            histories.append(items[before].astype(np.int64))
            targets.append(int(items[row]))
    return np.array(out_users, np.int64), histories, np.array(targets, np.int64)


def warm_queries(split: Split, n_candidates: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """Leave-one-out test queries, each with its target and `n_candidates` - 1 sampled warm items the user has not had."""
    known = split.known_before("test")
    histories_by_user = {int(u): g["item"].to_numpy(np.int64) for u, g in known.groupby("user", sort=False)}
    warm_items = np.unique(split.train["item"].to_numpy())
    rng = np.random.default_rng(seed)
    users, histories, candidates = [], [], []
    for user, target in zip(split.test["user"].to_numpy(), split.test["item"].to_numpy()):
        history = histories_by_user.get(int(user), np.zeros(0, np.int64))
        if not len(history):
            continue
        pool = np.setdiff1d(warm_items, np.append(history, target))
        others = rng.choice(pool, size=n_candidates - 1, replace=False)
        users.append(int(user))
        histories.append(history)
        candidates.append(np.concatenate([[int(target)], others]))
    return np.array(users, np.int64), histories, np.array(candidates, np.int64), np.zeros(len(users), np.int64)


def ranked_metrics(scores: np.ndarray, target_column: np.ndarray) -> dict[str, float]:
    """HR@10 and NDCG@10 of each row's target among the row's candidates (ties count half)."""
    target = scores[np.arange(len(scores)), target_column][:, None]
    rank = (scores > target).sum(1) + 0.5 * ((scores == target).sum(1) - 1)
    hit = rank < K
    return {"hr@10": float(hit.mean()), "ndcg@10": float(np.where(hit, 1 / np.log2(rank + 2), 0).mean())}


class ContentScorer:
    """Cosine between item text vectors and the mean vector of the user's last items: no training."""

    def __init__(self, dataset: Dataset):
        self.vectors = content_vectors(dataset.items, progress=False)

    def score(self, users: np.ndarray, history: list[np.ndarray]) -> np.ndarray:
        profile = np.stack([self.vectors[h[-CONTENT_HISTORY:]].mean(0) for h in history])
        return profile @ self.vectors.T


class ChanceScorer:
    def __init__(self, n_items: int, seed: int):
        self.n_items, self.rng = n_items, np.random.default_rng(seed)

    def score(self, users: np.ndarray, history: list[np.ndarray]) -> np.ndarray:
        return self.rng.random((len(users), self.n_items))


def evaluate_queries(scorer, cold: np.ndarray, cold_q, warm_q) -> dict[str, float]:
    """Cold figures within the held-out items, warm figures within same-size sampled candidate sets."""
    users, histories, targets = cold_q
    scores = np.asarray(scorer.score(users, history=histories), dtype=np.float64)[:, cold]
    out = {f"cold_{k}": v for k, v in ranked_metrics(scores, np.searchsorted(cold, targets)).items()}
    users, histories, candidates, target_column = warm_q
    scores = np.asarray(scorer.score(users, history=histories), dtype=np.float64)
    scores = np.take_along_axis(scores, candidates, 1)
    out.update({f"warm_{k}": v for k, v in ranked_metrics(scores, target_column).items()})
    return out


def run_model(model: str, seed: int, split: Split, threads: int, cold: np.ndarray, cold_q, warm_q) -> dict:
    rec, fit_seconds = fit_timed(model, CONFIGS[model], split, seed, threads)
    full = evaluate_recommender(rec, split, "test", ks=(K,)).metrics
    out = {"fit_seconds": fit_seconds, "full_hr@10": full["hr@10"], "full_ndcg@10": full["ndcg@10"]}
    out.update(evaluate_queries(rec, cold, cold_q, warm_q))
    out["best_epoch"] = rec.training_log.get("best_epoch")
    return out


def summary(rows: list[dict], n_cold: int, n_cold_queries: int, n_warm_queries: int) -> str:
    lines = [
        f"\nheld-out items N = {n_cold}; cold queries {n_cold_queries}; warm queries {n_warm_queries}; chance HR@10 = {K / n_cold:.3f}",
        "| model | seeds | cold HR@10 within N | cold NDCG@10 | warm HR@10 within N | warm NDCG@10 | warm full-ranking HR@10 | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r["result"] for r in rows if r["model"] == model]

        def stat(key: str, digits: int = 3) -> str:
            values = np.array([m.get(key, np.nan) for m in mine], dtype=float)
            if np.isnan(values).all():
                return ""
            return f"{np.nanmean(values):.{digits}f} ± {np.nanstd(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"

        cells = [stat("cold_hr@10"), stat("cold_ndcg@10"), stat("warm_hr@10"), stat("warm_ndcg@10"), stat("full_hr@10"), stat("fit_seconds", 0)]
        lines.append(f"| {model} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--dataset", default="ml-100k", help="a dataset name or path (load_dataset)")
    parser.add_argument("--cold-fraction", type=float, default=0.05, help="share of the catalog held out of training")
    parser.add_argument("--min-count", type=int, default=5, help="held-out items are drawn among items with at least this many interactions")
    parser.add_argument("--protocol-seed", type=int, default=0, help="seeds the held-out items and the warm candidate samples (fixed across model seeds)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--override", action="append", default=[], metavar="MODEL.KEY=VALUE",
                        help="change one model parameter (a JSON value), e.g. tiger.epochs=2 for a quick look")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/generative_cold_items.json"))
    args = parser.parse_args()
    for item in args.override:
        key, _, value = item.partition("=")
        model, _, name = key.partition(".")
        if model not in CONFIGS or not name:
            parser.error(f"--override {item!r}: expected MODEL.KEY=VALUE with MODEL one of {', '.join(MODELS)}")
        CONFIGS[model][name] = json.loads(value)
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    cold = hold_out_items(dataset, args.cold_fraction, args.min_count, args.protocol_seed)
    warm = dataset.with_interactions(dataset.interactions[~dataset.interactions["item"].isin(cold)], name=f"{dataset.name}[warm]")
    split = leave_one_out(warm)
    cold_q = cold_queries(dataset, cold)
    warm_q = warm_queries(split, len(cold), args.protocol_seed)
    machine = (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
               f"device {'cuda: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}, {args.threads} torch thread(s)")
    print(f"{machine}\n{dataset.name}: {len(cold)} items held out ({len(dataset.interactions) - len(warm.interactions)} interactions); "
          f"{len(cold_q[0])} cold queries, {len(warm_q[0])} warm queries", flush=True)
    rows: list[dict] = []

    def save() -> None:  # after every fitted model: a long run stopped early keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine, "held_out_items": cold.tolist(), "configs": {m: CONFIGS[m] for m in args.models},
                                        "rows": rows}, indent=2))  # fmt: skip

    for seed in args.seeds:
        for name, scorer in (("chance", ChanceScorer(dataset.n_items, seed)), ("content", ContentScorer(dataset))):
            rows.append({"model": name, "seed": seed, "result": evaluate_queries(scorer, cold, cold_q, warm_q)})
    for model in args.models:
        for seed in args.seeds:
            result = run_model(model, seed, split, args.threads, cold, cold_q, warm_q)
            rows.append({"model": model, "seed": seed, "result": result})
            print(f"{model:<7} seed {seed}: cold HR@10 {result['cold_hr@10']:.3f}  warm HR@10 {result['warm_hr@10']:.3f}  "
                  f"full HR@10 {result['full_hr@10']:.4f}  ({result['fit_seconds']:.0f}s)", flush=True)
            save()
    print(summary(rows, len(cold), len(cold_q[0]), len(warm_q[0])), flush=True)
    save()
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
