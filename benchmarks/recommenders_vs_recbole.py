"""Our recommenders beside RecBole 1.2.1 on ml-100k, same protocol, same run.

Protocol (both sides): leave-one-out by time (RecBole ``split: {LS: valid_and_test},
order: TO``), full ranking over all items minus the user's known ones, NDCG@10 on
the validation part for early stopping (patience 10), HR@10 / NDCG@10 / MRR@10
on the test part. The same hyper-parameters go to both sides (RecBole's defaults).
SASRec runs to an equal epoch budget on both sides (RecBole's takes about 5
minutes per epoch on 2 cores) and ours also to convergence.

RecBole lives in its own virtual environment, created on first use under
``$RECARENA_HOME/recbole-1.2.1-venv`` (numpy<2, pandas<2.3, scipy<1.11,
torch==2.13.0, then setuptools<70) and is driven through a worker script in a
subprocess; recarena never imports it.

    python benchmarks/recommenders_vs_recbole.py --models pop bpr lightgcn sasrec --seeds 0 1 2

Prints, per model and seed, our metric / RecBole's and our train wall time / RecBole's,
and writes everything as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fitting import fit_timed

from recarena.recommenders import ItemIndex, evaluate_recommender, retrieval_recall
from recarena.simulator.data import fetch_ml100k, load_dataset, recarena_home
from recarena.simulator.data.splits import leave_one_out

RECBOLE_PINS = ["torch==2.13.0", "recbole==1.2.1", "numpy<2", "pandas<2.3", "scipy<1.11"]
# RecBole imports pkg_resources (setuptools<70) while torch 2.13 declares setuptools>=77 (needed only to
# build C++ extensions), so setuptools is pinned down in a second pip call.
RECBOLE_SECOND_PINS = ["setuptools<70"]
METRICS = ("hr@10", "ndcg@10", "mrr@10")
RECBOLE_NAMES = {"pop": "Pop", "bpr": "BPR", "lightgcn": "LightGCN", "sasrec": "SASRec"}

# One set of hyper-parameters per model, given to both sides (RecBole's defaults).
SHARED = {
    "pop": {},
    "bpr": {"dim": 64, "lr": 1e-3, "batch_size": 2048, "epochs": 300, "patience": 10},
    "lightgcn": {"dim": 64, "lr": 1e-3, "batch_size": 2048, "epochs": 300, "patience": 10, "layers": 2, "reg_weight": 1e-5},
    "sasrec": {"dim": 64, "lr": 1e-3, "epochs": 10, "patience": 10, "layers": 2, "heads": 2, "inner_dim": 256, "dropout": 0.5, "max_len": 50},
}


def recbole_config(model: str, seed: int, data_path: Path, checkpoints: Path) -> dict:
    """RecBole's config_dict for the shared protocol and `model`'s shared hyper-parameters."""
    p = SHARED[model]
    config = {
        "data_path": str(data_path), "checkpoint_dir": str(checkpoints), "seed": seed, "reproducibility": True,
        "use_gpu": False, "show_progress": False, "state": "WARNING",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
        "eval_batch_size": 4096, "train_batch_size": 2048, "eval_step": 1,
        "epochs": p.get("epochs", 1), "stopping_step": p.get("patience", 10),
    }
    if "lr" in p:
        config["learning_rate"] = p["lr"]
    if model in ("bpr", "lightgcn"):
        config["embedding_size"] = p["dim"]
    if model == "lightgcn":
        config.update(n_layers=p["layers"], reg_weight=p["reg_weight"])
    if model == "sasrec":
        config.update(
            hidden_size=p["dim"], n_layers=p["layers"], n_heads=p["heads"], inner_size=p["inner_dim"],
            hidden_dropout_prob=p["dropout"], attn_dropout_prob=p["dropout"], MAX_ITEM_LIST_LENGTH=p["max_len"],
            loss_type="CE", train_neg_sample_args=None,
        )
    return config


WORKER = r'''
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed
name, config_dict = sys.argv[1], json.loads(sys.argv[2])
config = Config(model=name, dataset="ml-100k", config_dict=config_dict)
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
model = get_model(config["model"])(config, train._dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
started = time.perf_counter()
best_valid, _ = trainer.fit(train, valid, saved=True, show_progress=False)
fit_seconds = time.perf_counter() - started
result = trainer.evaluate(test, load_best_model=True, show_progress=False)
epochs = len(trainer.train_loss_dict) if hasattr(trainer, "train_loss_dict") else None
print("RESULT " + json.dumps({"fit_seconds": fit_seconds, "best_valid": best_valid, "epochs_run": epochs,
      "test": {k.lower().replace("hit@", "hr@"): float(v) for k, v in result.items()}}))
'''


def recbole_python(venv: Path) -> Path:
    """The interpreter of RecBole's own venv, creating it on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating RecBole's venv in {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *RECBOLE_PINS], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *RECBOLE_SECOND_PINS], check=True)
    return python


def run_recbole(python: Path, model: str, seed: int, threads: int) -> dict:
    data_path = fetch_ml100k().parent  # RecBole reads <data_path>/ml-100k/ml-100k.inter
    with tempfile.TemporaryDirectory() as tmp:
        worker = Path(tmp) / "worker.py"
        worker.write_text(WORKER)
        config = recbole_config(model, seed, data_path, Path(tmp) / "saved")
        env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
        started = time.perf_counter()
        done = subprocess.run([str(python), str(worker), RECBOLE_NAMES[model], json.dumps(config), str(threads)], capture_output=True, text=True, env=env, cwd=tmp)
        total = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"RecBole {model} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    out = json.loads(lines[-1][len("RESULT ") :])
    out["process_seconds"] = total
    return out


def run_ours(model: str, seed: int, split, threads: int, overrides: dict | None = None) -> dict:
    rec, fit_seconds = fit_timed(model, {**SHARED[model], **(overrides or {})}, split, seed, threads)
    result = evaluate_recommender(rec, split, "test", ks=(10,))
    log = rec.training_log
    return {"fit_seconds": fit_seconds, "best_valid": log.get("best_score"), "epochs_run": log.get("epochs_run"),
            "mean_epoch_seconds": log.get("mean_epoch_seconds"), "test": {m: result.metrics[m] for m in METRICS}}


def retrieval_latency(n_items: int = 100_000, dim: int = 64, k: int = 20, n_queries: int = 200) -> str:
    """Milliseconds per page request (one user, top-k) on a clustered `n_items` catalog, and recall against exact."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(256, dim))
    items = (centres[rng.integers(0, 256, n_items)] + 0.5 * rng.normal(size=(n_items, dim))).astype(np.float32)
    queries = (centres[rng.integers(0, 256, n_queries)] + 0.5 * rng.normal(size=(n_queries, dim))).astype(np.float32)
    lines = [f"\nretrieval: {n_items:,} items x {dim} dims, top-{k}, one query per request"]
    lines.append("| index | build s | ms per request | recall@%d vs exact |" % k)
    lines.append("|---|---|---|---|")
    brute = torch.from_numpy(items)
    started = time.perf_counter()
    for q in queries:
        torch.topk(brute @ torch.from_numpy(q), k)
    lines.append(f"| torch brute force (baseline) | 0 | {1000 * (time.perf_counter() - started) / n_queries:.2f} | 1.00 |")
    for kind in ("exact", "ivf", "hnsw"):
        started = time.perf_counter()
        index = ItemIndex(items, kind)
        built = time.perf_counter() - started
        started = time.perf_counter()
        for q in queries:
            index.search(q[None], k)
        per_request = 1000 * (time.perf_counter() - started) / n_queries
        lines.append(f"| faiss {kind} | {built:.1f} | {per_request:.2f} | {retrieval_recall(items, queries, k, index):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pop", "bpr", "lightgcn", "sasrec"], choices=list(SHARED))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--sasrec-epochs", type=int, default=10, help="SASRec's equal epoch budget on both sides")
    parser.add_argument("--sasrec-converged-epochs", type=int, default=200, help="our SASRec to convergence: most epochs (0 skips)")
    parser.add_argument("--recbole-venv", type=Path, default=recarena_home() / "recbole-1.2.1-venv")
    parser.add_argument("--skip-recbole", action="store_true", help="only our side (no ratios)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same on both sides")
    parser.add_argument("--retrieval", action="store_true", help="also time faiss page requests on a 100k-item catalog")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience (validation epochs without improvement) for every model, the same on both sides")
    parser.add_argument("--lr-grid", nargs="+", type=float, default=None,
                        help="learning rates to try; each side keeps, per seed, the one with its best validation NDCG@10 (never test)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/recommenders_vs_recbole.json"))
    args = parser.parse_args()
    SHARED["sasrec"]["epochs"] = args.sasrec_epochs
    if args.patience is not None:
        for params in SHARED.values():
            if "patience" in params:
                params["patience"] = args.patience
    split = leave_one_out(load_dataset("ml-100k"))
    python = None if args.skip_recbole else recbole_python(args.recbole_venv)
    machine = (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
               f"CUDA {'yes' if torch.cuda.is_available() else 'no'}, {args.threads} torch thread(s) on both sides")
    print(f"ml-100k, leave-one-out by time, full ranking; {machine}", flush=True)
    rows = []
    for model in args.models:
        for seed in args.seeds:
            if args.lr_grid and "lr" in SHARED[model]:
                ours, theirs = select_lr(model, seed, split, python, args.threads, args.lr_grid)
            else:
                ours = run_ours(model, seed, split, args.threads)
                theirs = run_recbole(python, model, seed, args.threads) if python else None
            row = {"model": model, "seed": seed, "ours": ours, "recbole": theirs}
            if model == "sasrec" and args.sasrec_converged_epochs:
                row["ours_converged"] = run_ours(model, seed, split, args.threads, {"epochs": args.sasrec_converged_epochs})
            rows.append(row)
            print(format_row(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"machine": machine, "shared_params": SHARED, "rows": rows}, indent=2))
    print(summary(rows))
    if args.retrieval:
        print(retrieval_latency())
    print(f"results written to {args.out}")


def select_lr(model: str, seed: int, split, python: Path | None, threads: int, grid: list[float]) -> tuple[dict, dict | None]:
    """Each side's run at the learning rate of `grid` with its best validation NDCG@10 (the same grid for both)."""
    default = SHARED[model]["lr"]
    ours_runs, their_runs = [], []
    try:
        for lr in grid:
            SHARED[model]["lr"] = lr
            ours_runs.append({**run_ours(model, seed, split, threads), "lr": lr})
            if python:
                their_runs.append({**run_recbole(python, model, seed, threads), "lr": lr})
    finally:
        SHARED[model]["lr"] = default
    best = lambda runs: max(runs, key=lambda r: r["best_valid"] if r["best_valid"] is not None else float("-inf"))  # noqa: E731
    ours = {**best(ours_runs), "tried": [{"lr": r["lr"], "best_valid": r["best_valid"]} for r in ours_runs]}
    theirs = {**best(their_runs), "tried": [{"lr": r["lr"], "best_valid": r["best_valid"]} for r in their_runs]} if their_runs else None
    return ours, theirs


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def format_row(row: dict) -> str:
    ours, theirs = row["ours"], row["recbole"] or {}
    cells = [f"{row['model']:<9} seed {row['seed']}"]
    for m in METRICS:
        cells.append(f"{m} {ours['test'][m]:.4f}/{theirs.get('test', {}).get(m, float('nan')):.4f}={_ratio(ours['test'][m], theirs.get('test', {}).get(m))}")
    cells.append(f"train {ours['fit_seconds']:.1f}s/{theirs.get('fit_seconds', float('nan')):.1f}s={_ratio(ours['fit_seconds'], theirs.get('fit_seconds'))}")
    cells.append(f"epochs {ours['epochs_run']}/{theirs.get('epochs_run')}")
    if "lr" in ours:
        cells.append(f"lr {ours['lr']}/{theirs.get('lr')} (chosen on validation)")
    text = "  ".join(cells)
    if "ours_converged" in row:
        c = row["ours_converged"]
        text += f"\n{'':<9} ours to convergence: ndcg@10 {c['test']['ndcg@10']:.4f} in {c['fit_seconds']:.1f}s ({c['epochs_run']} epochs)"
    return text


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary(rows: list[dict]) -> str:
    """Per model, averaged over seeds: our metrics / RecBole's and our train time / RecBole's (markdown)."""
    lines = [
        "",
        "| model | seeds | ours NDCG@10 | RecBole NDCG@10 | NDCG ratio | HR@10 ratio | MRR@10 ratio | ours train s | RecBole train s | time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]

        def mean(side: str, key: str | None) -> float | None:
            if not all(r.get(side) for r in mine):
                return None
            return float(np.mean([r[side]["test"][key] if key else r[side]["fit_seconds"] for r in mine]))

        ratios = [_ratio(mean("ours", m), mean("recbole", m)) for m in METRICS]
        lines.append(
            f"| {model} | {len(mine)} | {_fmt(mean('ours', 'ndcg@10'), 4)} | {_fmt(mean('recbole', 'ndcg@10'), 4)} | {ratios[1]} | {ratios[0]} | {ratios[2]} "
            f"| {_fmt(mean('ours', None), 1)} | {_fmt(mean('recbole', None), 1)} | {_ratio(mean('ours', None), mean('recbole', None))} |"
        )
        if all("ours_converged" in r for r in mine):
            lines.append(f"| {model} (ours to convergence) | {len(mine)} | {_fmt(mean('ours_converged', 'ndcg@10'), 4)} | | | | | {_fmt(mean('ours_converged', None), 1)} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
