"""What one page of an LLM user costs on the embedded SmolLM2: ten watch questions sharing the user's system prompt.

    .venv/bin/python benchmarks/llm_page_cost.py --pages 6 [--adapter runs/tune-llm/adapter-<hash>]

Real prompts: the LLM user's own system turn (an ml-100k user's profile) and watch questions, built by
`recarena.agents.tuning.examples`. Measured in the same run, one page after another:

* **from scratch**: every question evaluates its whole prompt (what the backend did before it kept the
  system block's KV cache; forced here by forgetting the cached block before each question);
* **system block reused**: the backend as it runs now (the block evaluated once per page);
* **tuned** (with `--adapter`): the same with a `recarena tune-llm` adapter, served both ways llama.cpp
  can: the LoRA file applied at run time (``serving="lora"``) and folded into the weights
  (``serving="merged"``, `recarena.agents.llm.merged`; the merge itself is timed apart); each with
  its mean absolute change of log P(Yes) against the base model, the adapter's effect, so that a
  serving that loses the effect shows.

It prints seconds per page and the ratios; the answers of the first two are checked equal.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from recarena.agents.llm.embedded import EmbeddedBackend
from recarena.agents.llm.protocol import SamplingParams, ScoreRequest
from recarena.agents.tuning.examples import ExampleConfig, build_examples
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out


def pages_of_questions(pages: int, per_page: int) -> list[list[tuple[dict[str, str], ...]]]:
    """`pages` pages of `per_page` watch questions, each page one user's (its system turn shared by the page)."""
    train = leave_one_out(load_dataset("ml-100k")).train_dataset()
    examples = build_examples(train, ExampleConfig(users=pages, targets=2, negatives=per_page // 2 - 1, ratings=False), seed=0)
    by_user: dict[int, list] = {}
    for example in examples:
        by_user.setdefault(example.user, []).append(example.messages)
    return [questions[:per_page] for questions in by_user.values()][:pages]


def run(backend: EmbeddedBackend, pages: list, from_scratch: bool) -> tuple[float, list[float]]:
    """Seconds per page, and every answer's log P(Yes)."""
    answers, started = [], time.perf_counter()
    for page in pages:
        for messages in page:
            if from_scratch:
                backend._system_tokens = None  # forget the cached block: the whole prompt is evaluated again
            answers.append(backend.score_options(ScoreRequest(messages, ("Yes", "No"), SamplingParams()), 120).logprobs["Yes"])
    return (time.perf_counter() - started) / len(pages), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--per-page", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--adapter", type=Path, default=None)
    args = parser.parse_args()
    pages = pages_of_questions(args.pages, args.per_page)
    base = EmbeddedBackend(n_threads=args.threads)
    run(base, pages[:1], from_scratch=False)  # warm-up
    scratch, scratch_answers = run(base, pages, from_scratch=True)
    reused, reused_answers = run(base, pages, from_scratch=False)
    assert np.array_equal(scratch_answers, reused_answers), "reusing the system block changed an answer"
    print(f"machine: {platform.machine()}, {args.threads or 'default'} llama.cpp threads; {len(pages)} pages of {args.per_page} questions")
    print(f"from scratch          {scratch:7.2f} s/page")
    print(f"system block reused   {reused:7.2f} s/page   ({scratch / reused:.2f}x faster than from scratch; same answers)")
    if args.adapter is not None:
        effects = {}
        for serving in ("lora", "merged"):
            began = time.perf_counter()
            tuned_backend = EmbeddedBackend(n_threads=args.threads, adapter=args.adapter, serving=serving)
            loading = time.perf_counter() - began
            run(tuned_backend, pages[:1], from_scratch=False)
            tuned, tuned_answers = run(tuned_backend, pages, from_scratch=False)
            effects[serving] = np.array(tuned_answers) - np.array(reused_answers)
            print(f"tuned, {serving:6s} {tuned:13.2f} s/page   ({tuned / reused:.2f}x the base model's page time; loading {loading:.1f} s, "
                  f"adapter's effect on log P(Yes): mean |change| {np.abs(effects[serving]).mean():.3f})")  # fmt: skip
            tuned_backend.close()
        gap = np.abs(effects["merged"] - effects["lora"])
        print(f"merged against lora: log P(Yes) differs by {gap.mean():.3f} on average (at most {gap.max():.3f}); "
              f"correlation of the effects {np.corrcoef(effects['merged'], effects['lora'])[0, 1]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
