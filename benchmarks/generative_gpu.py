"""Training throughput and peak memory of SASRec, HSTU and TIGER at the same sizes, and HSTU's attention
beside SASRec's at long sequence lengths. Runs on CUDA when present (bf16 autocast), else on CPU (fp32).

Part 1 fits each model through the registry on one synthetic dataset (same users, items, history
lengths, dimension, layers, batch size; no validation) and reports training sequences per second
(users whose whole training history is consumed, per second of epoch time, the first epoch left out
as warm-up) and peak GPU memory (``torch.cuda.max_memory_allocated``; not measured on CPU).
Part 2 times one layer forward + backward at each ``--lengths``: SASRec's block exactly as SASRec
builds it (an explicit float mask, so no flash kernel), a causal block on
``scaled_dot_product_attention(is_causal=True)`` (FlashAttention-2 on CUDA in bf16: the paper's
baseline), and our HSTU layer (pointwise SiLU attention with relative position and time-gap bias,
materialised as a [batch, heads, n, n] tensor; ``--compile`` adds it through torch.compile). Every
ratio is against SASRec's block measured in the same run.

    python benchmarks/generative_gpu.py                      # CPU: small sizes
    python benchmarks/generative_gpu.py --device cuda --users 6000 --items 20000 --history 200 --dim 256 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recarena.recommenders import build_recommender, recommender_names
from recarena.recommenders.generative.hstu import HSTULayer, HSTUParams, time_gap_buckets
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

MODELS = ("sasrec", "hstu", "tiger")


def describe(device: torch.device) -> str:
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return f"{where}; torch {torch.__version__}; {'bf16 autocast' if device.type == 'cuda' else 'fp32'}"


def autocast(device: torch.device):
    return torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def model_params(model: str, args: argparse.Namespace, device: torch.device) -> dict:
    shared = {"epochs": args.epochs, "device": str(device), "progress": False, "seed": 0, "threads": 0, "dim": args.dim}
    if model == "sasrec":
        return {**shared, "max_len": args.history, "layers": args.layers, "heads": args.heads, "inner_dim": 4 * args.dim, "batch_size": args.batch_size}
    if model == "hstu":
        return {**shared, "max_len": args.history, "layers": args.layers, "heads": args.heads, "batch_size": args.batch_size, "compile": args.compile}
    return shared  # TIGER: its own architecture at the shared dimension and epochs


def training_throughput(model: str, args: argparse.Namespace, device: torch.device, dataset) -> dict:
    rec = build_recommender(model, model_params(model, args, device))
    if model == "sasrec" and args.compile:
        build = rec._build_module
        rec._build_module = lambda: torch.compile(build(), dynamic=True)  # SASRec has no compile option of its own
    reset_peak(device)
    with autocast(device):  # HSTU autocasts itself; this brings SASRec and TIGER to the same precision
        rec.fit(dataset)
    seconds = rec.training_log["epoch_seconds"][1:] or rec.training_log["epoch_seconds"]
    sequences = sum(1 for h in rec.histories if len(h) >= 2)
    return {"sequences_per_s": sequences / float(np.mean(seconds)), "epoch_s": float(np.mean(seconds)), "peak_mib": peak_mib(device)}


class SDPABlock(nn.Module):
    """A pre-norm causal transformer block on scaled_dot_product_attention(is_causal=True): flash where the GPU has it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, d))
        return x + self.ff(self.norm2(x))


def time_layer(run, device: torch.device, repeats: int) -> tuple[float, float | None]:
    """Milliseconds per forward + backward (after two warm-up calls) and peak memory."""
    for _ in range(2):
        run()
    reset_peak(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - started) / repeats, peak_mib(device)


def attention_rows(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for n in args.lengths:
        torch.manual_seed(0)
        x = torch.randn(args.attention_batch, n, args.dim, device=device, requires_grad=True)
        items = torch.randint(1, 1000, (args.attention_batch, n), device=device)
        times = torch.cumsum(torch.randint(1, 10**5, (args.attention_batch, n), device=device), 1)
        causal_bool = torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), 1)
        sasrec = nn.TransformerEncoderLayer(args.dim, args.heads, 4 * args.dim, 0.2, activation="gelu", batch_first=True).to(device)
        sdpa = SDPABlock(args.dim, args.heads).to(device)
        hstu = HSTULayer(HSTUParams(dim=args.dim, heads=args.heads, max_len=n, dropout=0.2)).to(device)
        index = torch.arange(n, device=device)
        distance, lower = (index[:, None] - index[None, :]).clamp(min=0), index[:, None] >= index[None, :]
        gaps = time_gap_buckets(times, 64)
        padded = (items == 0)[:, None, :] | causal_bool[None]  # SASRec's per-row padding + causal mask, per head
        sasrec_mask = torch.zeros(padded.shape, device=device).masked_fill(padded, float("-inf")).repeat_interleave(args.heads, 0)
        candidates = {
            "SASRec block (float mask)": lambda: sasrec(x, src_mask=sasrec_mask),
            "SDPA causal block (flash on CUDA)": lambda: sdpa(x),
            "HSTU layer (ours, eager)": lambda: hstu(x, lower, distance, gaps),
        }
        if args.compile:
            compiled = torch.compile(hstu)
            candidates["HSTU layer (ours, torch.compile)"] = lambda: compiled(x, lower, distance, gaps)
        baseline = None
        for name, forward in candidates.items():

            def step(forward=forward) -> None:
                with autocast(device):
                    out = forward()
                out.float().sum().backward()

            try:
                ms, mib = time_layer(step, device, args.repeats)
            except torch.OutOfMemoryError:
                rows.append({"length": n, "layer": name, "ms": None, "peak_mib": None})
                torch.cuda.empty_cache()
                continue
            baseline = ms if baseline is None else baseline
            rows.append({"length": n, "layer": name, "ms": ms, "peak_mib": mib, "vs_sasrec": ms / baseline})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--users", type=int, default=None, help="synthetic users (default 300 on CPU, 6000 on CUDA)")
    parser.add_argument("--items", type=int, default=None, help="synthetic items (default 1000 on CPU, 20000 on CUDA)")
    parser.add_argument("--history", type=int, default=None, help="max_len and mean history length (default 50 on CPU, 200 on CUDA)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model (the first is left out as warm-up)")
    parser.add_argument("--lengths", nargs="+", type=int, default=[200, 1024], help="sequence lengths of the attention comparison")
    parser.add_argument("--attention-batch", type=int, default=None, help="sequences per attention call (default 2 on CPU, 32 on CUDA)")
    parser.add_argument("--repeats", type=int, default=None, help="timed attention calls (default 3 on CPU, 20 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="also train / time through torch.compile")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/generative_gpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    args.users = args.users or (6000 if gpu else 300)
    args.items = args.items or (20000 if gpu else 1000)
    args.history = args.history or (200 if gpu else 50)
    args.attention_batch = args.attention_batch or (32 if gpu else 2)
    args.repeats = args.repeats or (20 if gpu else 3)
    print(f"device: {describe(device)}", flush=True)
    dataset = generate_synthetic(SyntheticConfig(n_users=args.users, n_items=args.items, mean_interactions=args.history, seed=0))
    print(f"training: {args.users} users x {args.items} items, {len(dataset.interactions):,} interactions, max_len {args.history}, "
          f"dim {args.dim}, {args.layers} layers, {args.heads} heads, batch {args.batch_size}, {args.epochs} epochs", flush=True)
    report: dict = {"device": describe(device), "args": vars(args) | {"out": str(args.out)}, "training": {}, "attention": []}
    lines = ["| model | sequences / s | epoch s | peak MiB | throughput vs SASRec |", "|---|---|---|---|---|"]
    for model in args.models:
        if model not in recommender_names():
            print(f"{model}: not available yet (not in the recommender registry); skipped")
            continue
        try:
            result = training_throughput(model, args, device, dataset)
        except Exception as error:  # noqa: BLE001 - one model failing must not hide the others' figures
            print(f"{model}: failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            continue
        report["training"][model] = result
        base = report["training"].get("sasrec", {}).get("sequences_per_s")
        ratio = f"{result['sequences_per_s'] / base:.2f}" if base else "n/a"
        mib = f"{result['peak_mib']:.0f}" if result["peak_mib"] is not None else "n/a (CPU)"
        lines.append(f"| {model} | {result['sequences_per_s']:.1f} | {result['epoch_s']:.2f} | {mib} | {ratio} |")
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    print(f"\nattention, one layer forward + backward: batch {args.attention_batch}, dim {args.dim}, {args.heads} heads, {args.repeats} timed calls")
    report["attention"] = attention_rows(args, device)
    print("| length | layer | ms | peak MiB | time vs SASRec block |\n|---|---|---|---|---|")
    for row in report["attention"]:
        ms = f"{row['ms']:.2f}" if row["ms"] is not None else "out of memory"
        mib = f"{row['peak_mib']:.0f}" if row.get("peak_mib") is not None else "n/a"
        ratio = f"{row['vs_sasrec']:.2f}" if row.get("vs_sasrec") is not None else "n/a"
        print(f"| {row['length']} | {row['layer']} | {ms} | {mib} | {ratio} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
