"""Does the tuned LLM know taste? The users' LLM with and without a `recarena tune-llm` adapter, on held-out items.

    python benchmarks/tuned_llm.py --adapter runs/tune-llm/adapter-<hash> --users 200 --seed 0

ml-100k, split leave-one-out by time, the split `recarena tune-llm` trains on: the adapter's manifest
must name this training part's fingerprint, so no held-out interaction reached the adapter (the
script refuses another). For `--users` sampled test users, the LLM user's own questions are asked
about held-out items, exactly as a simulated user asks them (its profile from its training history;
`recarena.agents.tuning.validation.HeldOut`): a watch question on the user's **test** item (answer Yes) and on
`--negatives` items it never had (answer No), and the rate question on the test item. ``--part valid``
asks about the validation item instead: that is the part to compare recipes on.

Scored in the same run, through llama.cpp as the simulation runs them:

* the base SmolLM2 and the tuned one (`embedded` and `embedded:adapter=FOLDER`): P(Yes), and the
  expected stars of P(1..5);
* cheap baselines: random (AUC 0.5), the item's training popularity, the statistical user's
  interest logit (the preference model on the same training part), and the item's training mean
  rating for the stars.

Reported: pooled AUC of the watch questions with a 95% bootstrap interval over users, rating RMSE,
and who wins. `--check-serving` also compares the adapter's effect in torch (transformers + peft) and
in llama.cpp on a few prompts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recarena.agents.kit import build_user_kit
from recarena.agents.llm.embedded import EmbeddedBackend
from recarena.agents.llm.protocol import SamplingParams, ScoreRequest
from recarena.agents.tuning.examples import Example, ExampleConfig
from recarena.agents.tuning.validation import HeldOut, auc, bootstrap_auc
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out

STARS = np.arange(1, 6, dtype=float)


def llm_scores(backend: EmbeddedBackend, examples: list[Example], label: str) -> np.ndarray:
    """Per example: P(Yes) of a watch question, expected stars of a rate question."""
    out = np.empty(len(examples))
    for i, example in enumerate(tqdm(examples, desc=label, mininterval=5)):
        logprobs = backend.score_options(ScoreRequest(example.messages, example.options, SamplingParams()), 120).logprobs
        values = np.exp(np.array([logprobs[o] for o in example.options]))
        values /= values.sum()
        out[i] = values[0] if example.question == "watch" else float(values @ STARS)
    return out


def check_serving(adapter: Path, examples: list[Example], threads: int | None) -> dict[str, list[float]]:
    """The adapter's effect on logit P(Yes) of a few watch questions, in torch (transformers + peft, as trained) and in
    llama.cpp (adapter.gguf on the Q4_1 base, as served): the two should move together."""
    import torch

    from recarena.agents.tuning.base import load_base, load_tuned, p_yes

    chosen = [e for e in examples if e.question == "watch"][:8]
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    base = load_base(None, torch.device("cpu"), torch.float32, progress=False)
    torch_base = logit(p_yes(base.model, base.tokenizer, chosen))
    tuned = load_tuned(adapter, device=torch.device("cpu"))
    torch_tuned = logit(p_yes(tuned.model, tuned.tokenizer, chosen))
    served = {}
    for label, folder in (("base", None), ("tuned", adapter)):
        backend = EmbeddedBackend(n_threads=threads, adapter=folder)
        served[label] = logit(llm_scores(backend, chosen, f"llama.cpp {label}"))
        backend.close()
    return {"torch": (torch_tuned - torch_base).round(3).tolist(), "llama.cpp": (served["tuned"] - served["base"]).round(3).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1, help="of the sampled test users (tune-llm's default seed is 0)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--check-serving", action="store_true", help="also compare the adapter's effect in torch and llama.cpp")
    parser.add_argument("--part", choices=("test", "valid"), default="test", help="the held-out part asked about (valid: to choose a recipe)")
    parser.add_argument("--out", type=Path, default=Path("runs/tuned_llm.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset)
    train = split.train_dataset()
    manifest = json.loads((args.adapter / "manifest.json").read_text())
    if manifest["data"]["fingerprint"] != train.fingerprint():
        raise SystemExit(f"{args.adapter}: trained on other data than ml-100k's leave-one-out training part; its held-out items may have reached it")
    held = HeldOut.build(train, getattr(split, args.part), ExampleConfig(users=args.users, targets=1, negatives=args.negatives), args.seed)
    examples = list(held.examples)
    watch = np.array([e.question == "watch" for e in examples])
    labels = np.array([e.answer == "Yes" for e in examples])[watch]
    users = np.array([e.user for e in examples])
    items = np.array([e.item for e in examples])
    real_stars = np.array([float(e.answer) for e in examples if e.question == "rate"])

    kit = build_user_kit(train, seed=0)
    interest = np.array([kit.behaviour.interest_logits(np.array([u]), np.array([[i]]))[0, 0] for u, i in zip(users[watch], items[watch])])
    scorers = {"popularity (baseline)": held.popularity[items[watch]], "statistical user's interest (baseline)": interest}
    stars = {"item mean rating (baseline)": held.item_mean[items[~watch]]}
    backends = {"SmolLM2 base": EmbeddedBackend(n_threads=args.threads), "SmolLM2 tuned": EmbeddedBackend(n_threads=args.threads, adapter=args.adapter)}
    for label, backend in backends.items():
        values = llm_scores(backend, examples, label)
        scorers[label], stars[label] = values[watch], values[~watch]
        backend.close()

    table = {"random (baseline)": {"auc": 0.5, "ci": [0.5, 0.5]}}
    for label, scores in scorers.items():
        table[label] = {"auc": auc(scores, labels), "ci": list(bootstrap_auc(scores, labels, users[watch], args.seed))}
    for label, predicted in stars.items():
        table.setdefault(label, {})["rating_rmse"] = float(np.sqrt(np.mean((predicted - real_stars) ** 2)))
    results = {"adapter": str(args.adapter), "adapter_sha256": manifest.get("content_sha256"), "users": int(len(np.unique(users))),
               "watch_questions": int(watch.sum()), "positives": int(labels.sum()), "rate_questions": int((~watch).sum()),
               "seed": args.seed, "part": args.part, "table": table, "seconds": time.perf_counter() - started}  # fmt: skip
    if args.check_serving:
        results["serving"] = check_serving(args.adapter, examples, args.threads)
        print("adapter's effect on logit P(Yes), torch:", results["serving"]["torch"], "llama.cpp:", results["serving"]["llama.cpp"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"held-out {args.part} items of {results['users']} ml-100k users ({results['positives']} positives, "
          f"{results['watch_questions'] - results['positives']} never-had negatives; {results['rate_questions']} ratings)")
    print(f"{'scorer':42s} {'watch AUC':>10s} {'95% CI':>16s} {'rating RMSE':>12s}")
    for label, row in table.items():
        ci = f"[{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]" if "ci" in row else ""
        rmse = f"{row['rating_rmse']:.3f}" if "rating_rmse" in row else ""
        shown = f"{row['auc']:.3f}" if "auc" in row else ""
        print(f"{label:42s} {shown:>10s} {ci:>16s} {rmse:>12s}")
    best = max((k for k in table if "auc" in table[k]), key=lambda k: table[k]["auc"])
    print(f"best watch AUC: {best}; tuned - base: {table['SmolLM2 tuned']['auc'] - table['SmolLM2 base']['auc']:+.3f}")
    print(f"seconds: {results['seconds']:.0f}; results: {args.out}")


if __name__ == "__main__":
    main()
