"""TALLRec's own protocol on ml-100k, with the embedded SmolLM2-135M and recarena's LoRA trainer.

    python benchmarks/tallrec.py --samples 16 64 256 --test 500 --seed 0

The protocol, as TALLRec's ``preprocess_movie.py`` builds it (Bao et al., RecSys 2023):

* each user's ratings in time order; for every position ``i >= 10``, a record: the 10 items before
  it, each marked liked (rating > 3) or not, the target item ``i`` and its label (rating > 3);
* the users' records one after the other, the last 10,000 kept, split 8:1:1 in that order into
  train, valid and test. (TALLRec orders users by first appearance in ``u.data``; recarena loads the
  interactions sorted by time, so here users come in the order of their first rating: the split's
  sizes and construction are TALLRec's, its exact records are not.)
* the prompt: the instruction (system turn) "Given the user's preference and unpreference, identify
  whether the user will like the target movie by answering "Yes." or "No."", then "User Preference:
  "A (1995)", ... / User Unpreference: ... / Whether the user will like the target movie "X (1996)"?";
  the answer is read as P(Yes) against P(No) at the first answer token, as the LLM user reads it;
* few-shot: ``--samples`` training records drawn at random (seeded), a fresh LoRA each; AUC on the
  test records. CUDA with bf16 when present, else CPU float32 (as `recarena tune-llm`).

Measured in the same run: the base model (no adapter), each LoRA, and cheap baselines that see the
training records only or the record itself: random (0.5), the user's liked share in the record's
history, the target item's liked share in the training records. TALLRec's published AUCs
(LLaMA-7B): 0.672 / 0.675 / 0.720 at 16 / 64 / 256 samples; its sequential baselines 0.50-0.54.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recarena.agents.tuning.base import Recipe, add_lora, device_and_dtype, load_base, score_examples
from recarena.agents.tuning.examples import Example
from recarena.agents.tuning.packing import pack
from recarena.agents.tuning.trainer import train
from recarena.agents.tuning.validation import auc, bootstrap_auc
from recarena.simulator.data import load_dataset

INSTRUCTION = 'Given the user\'s preference and unpreference, identify whether the user will like the target movie by answering "Yes." or "No.".'
HISTORY, RECORDS = 10, 10_000
OPTIONS = ("Yes", "No")


@dataclass(frozen=True)
class Record:
    user: int
    history: tuple[int, ...]
    liked: tuple[bool, ...]
    target: int
    label: bool


def tallrec_records(dataset) -> list[Record]:
    """Every user's (10 items before, target) records in time order, users by first rating; the last 10,000."""
    frame = dataset.interactions
    records: list[Record] = []
    for user, rows in frame.groupby("user", sort=False):  # the frame is in time order: users by first rating
        items, liked = rows["item"].to_numpy(), (rows["rating"].to_numpy() > 3)
        for i in range(HISTORY, len(items)):
            records.append(Record(int(user), tuple(map(int, items[i - HISTORY : i])), tuple(map(bool, liked[i - HISTORY : i])),
                                  int(items[i]), bool(liked[i])))  # fmt: skip
    return records[-RECORDS:]


def example_of(record: Record, names: list[str]) -> Example:
    quote = lambda items: ", ".join(f'"{names[i]}"' for i in items)  # noqa: E731
    preference = quote([i for i, good in zip(record.history, record.liked) if good])
    unpreference = quote([i for i, good in zip(record.history, record.liked) if not good])
    text = f'User Preference: {preference}\nUser Unpreference: {unpreference}\nWhether the user will like the target movie "{names[record.target]}"?'
    messages = ({"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text})
    return Example(record.user, record.target, "watch", messages, OPTIONS, "Yes" if record.label else "No", None)


def p_yes_of(model, tokenizer, examples: list[Example]) -> np.ndarray:
    return np.array([p[0] for p in score_examples(model, tokenizer, examples, max_tokens=2048, batch=2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--test", type=int, default=500, help="test records scored (of TALLRec's 1,000; a seeded sample)")
    parser.add_argument("--valid", type=int, default=0, help="validation records measured during training (0: none)")
    parser.add_argument("--passes", type=float, default=8.0, help="times each training record is seen")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--modules", nargs="+", default=["q_proj", "k_proj", "v_proj", "o_proj"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/tallrec.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    names = [str(t) if pd.isna(y) else f"{t} ({int(y)})" for t, y in zip(dataset.items["title"], dataset.items["year"])]
    records = tallrec_records(dataset)
    n = len(records)
    train_records, valid_records, test_records = records[: int(n * 0.8)], records[int(n * 0.8) : int(n * 0.9)], records[int(n * 0.9) :]
    rng = np.random.default_rng(args.seed)
    test_records = [test_records[i] for i in np.sort(rng.choice(len(test_records), min(args.test, len(test_records)), replace=False))]
    labels = np.array([r.label for r in test_records])
    users = np.array([r.user for r in test_records])
    test_examples = [example_of(r, names) for r in test_records]

    liked_of_item: dict[int, list[bool]] = {}
    for r in train_records:
        liked_of_item.setdefault(r.target, []).append(r.label)
    overall = float(np.mean([r.label for r in train_records]))
    scorers = {
        "user's liked share in the history (baseline)": np.array([np.mean(r.liked) for r in test_records]),
        "item's liked share in training records (baseline)": np.array([np.mean(liked_of_item.get(r.target, [overall])) for r in test_records]),
    }  # fmt: skip
    base = load_base(None, progress=False)
    scorers["SmolLM2-135M, no tuning"] = p_yes_of(base.model, base.tokenizer, test_examples)
    curves = {}
    for samples in args.samples:
        chosen = [train_records[i] for i in np.sort(rng.choice(len(train_records), min(samples, len(train_records)), replace=False))]
        loaded = load_base(None, progress=False)
        torch.manual_seed(args.seed)
        sequences = pack(loaded.tokenizer, [example_of(r, names) for r in chosen], 1024)
        batch = min(4, len(sequences))
        steps = max(1, math.ceil(args.passes * len(sequences) / batch))
        recipe = Recipe(rank=args.rank, alpha=2.0 * args.rank, layers=args.layers, modules=tuple(args.modules), steps=steps, batch=batch,
                        max_tokens=1024, lr=args.lr, warmup=max(1, steps // 10), checkpoint_every=steps)  # fmt: skip
        model = add_lora(loaded.model, recipe)
        measure = None
        if args.valid:
            valid_examples = [example_of(r, names) for r in valid_records[-args.valid :]]
            valid_labels = np.array([e.answer == "Yes" for e in valid_examples])
            measure = lambda m: {"valid_auc": round(auc(p_yes_of(m, loaded.tokenizer, valid_examples), valid_labels), 4)}  # noqa: E731
        with tempfile.TemporaryDirectory() as folder:
            training = train(model, sequences, recipe, args.seed, Path(folder), {"samples": samples}, loaded.tokenizer.pad_token_id or 0,
                             progress=True, measure=measure, validate_every=max(1, steps // 4))  # fmt: skip
        label = f"SmolLM2-135M + LoRA, {samples} samples"
        scorers[label] = p_yes_of(model, loaded.tokenizer, test_examples)
        curves[label] = {"steps": steps, "seconds": training.seconds, "loss": [c["loss"] for c in training.curve],
                         "validation": training.validation}  # fmt: skip

    table = {"random (baseline)": {"auc": 0.5, "ci": [0.5, 0.5]}}
    for label, scores in scorers.items():
        table[label] = {"auc": round(auc(scores, labels), 4), "ci": [round(v, 4) for v in bootstrap_auc(scores, labels, users, args.seed)]}
    results = {"protocol": "TALLRec ml-100k (last 10,000 records, 8:1:1, rating > 3)", "records": {"train": len(train_records),
               "valid": len(valid_records), "test": len(labels), "test_liked_share": round(float(labels.mean()), 4)},
               "recipe": {k: v for k, v in vars(args).items() if k not in ("out",)}, "device": str(device_and_dtype()), "table": table, "training": curves,
               "seconds": time.perf_counter() - started}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"TALLRec protocol on ml-100k: {len(labels)} test records ({labels.mean():.2f} liked), {len(train_records)} training records")
    print(f"{'scorer':52s} {'AUC':>7s} {'95% CI':>16s}")
    for label, row in table.items():
        print(f"{label:52s} {row['auc']:7.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]")
    best = max(table, key=lambda k: table[k]["auc"])
    print(f"best: {best}; TALLRec (LLaMA-7B) published 0.672 / 0.675 / 0.720 at 16 / 64 / 256 samples")
    print(f"seconds: {results['seconds']:.0f}; results: {args.out}")


if __name__ == "__main__":
    main()
