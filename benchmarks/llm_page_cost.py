"""What one page of an LLM user costs on the embedded SmolLM2: ten watch questions sharing the user's system prompt.

    .venv/bin/python benchmarks/llm_page_cost.py --pages 6 [--adapter runs/tune-llm/adapter-<hash>]

Real prompts: the LLM user's own system turn (an ml-100k user's profile) and watch questions, built by
`recarena.agents.tuning.examples`. Measured in the same run, one page after another:

* **from scratch**: every question evaluates its whole prompt (what the backend did before it kept the
  system block's KV cache; forced here by forgetting the cached block before each question);
* **system block reused**: the backend as it runs (the block evaluated once per page), on the file's Q4_1 weights;
* **Q8_0 weights**: the backend's default, the shipped file's Q4_1 blocks requantised to Q8_0 (`merged.py`),
  with how far its answers move from the Q4_1 file's;
* **tuned** (with `--adapter`): the same with a `recarena tune-llm` adapter, served three ways: the LoRA
  file applied at run time on the Q4_1 file (``serving="lora"``), folded into the Q4_1 file's weights
  (``serving="merged"``, ``weights="file"``: the adapted tensors in Q8_0) and folded in with every
  block in Q8_0 (the default; `recarena.agents.llm.merged`; loading includes a first merge); each with
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
    base = EmbeddedBackend(n_threads=args.threads, weights="file")  # the GGUF as the package ships it (Q4_1)
    run(base, pages[:1], from_scratch=False)  # warm-up
    scratch, scratch_answers = run(base, pages, from_scratch=True)
    reused, reused_answers = run(base, pages, from_scratch=False)
    assert np.array_equal(scratch_answers, reused_answers), "reusing the system block changed an answer"
    print(f"machine: {platform.machine()}, {args.threads or 'default'} llama.cpp threads; {len(pages)} pages of {args.per_page} questions")
    print(f"from scratch          {scratch:7.2f} s/page   (the shipped file's Q4_1 weights)")
    print(f"system block reused   {reused:7.2f} s/page   ({scratch / reused:.2f}x faster than from scratch; same answers)")
    base.close()
    began = time.perf_counter()
    q8 = EmbeddedBackend(n_threads=args.threads)  # the default: the Q4_1 blocks requantised to Q8_0 (built once, cached)
    loading = time.perf_counter() - began
    run(q8, pages[:1], from_scratch=False)
    q8_time, q8_answers = run(q8, pages, from_scratch=False)
    q8.close()
    change = np.array(q8_answers) - np.array(reused_answers)
    print(f"Q8_0 weights (default) {q8_time:6.2f} s/page   ({q8_time / reused:.2f}x the Q4_1 page time; loading {loading:.1f} s; "
          f"log P(Yes) against Q4_1: mean |change| {np.abs(change).mean():.3f}, at most {np.abs(change).max():.3f}, "
          f"correlation {np.corrcoef(q8_answers, reused_answers)[0, 1]:.4f})")  # fmt: skip
    if args.adapter is not None:
        effects = {}
        for label, weights, serving, reference in (("lora, Q4_1", "file", "lora", reused_answers), ("merged, Q4_1", "file", "merged", reused_answers),
                                                   ("merged, Q8_0", "q8_0", "merged", q8_answers)):  # fmt: skip
            began = time.perf_counter()
            tuned_backend = EmbeddedBackend(n_threads=args.threads, adapter=args.adapter, serving=serving, weights=weights)
            loading = time.perf_counter() - began
            run(tuned_backend, pages[:1], from_scratch=False)
            tuned, tuned_answers = run(tuned_backend, pages, from_scratch=False)
            effects[label] = np.array(tuned_answers) - np.array(reference)
            print(f"tuned, {label:12s} {tuned:7.2f} s/page   ({tuned / reused:.2f}x the Q4_1 base page; loading {loading:.1f} s, "
                  f"adapter's effect on log P(Yes) against its base: mean |change| {np.abs(effects[label]).mean():.3f})")  # fmt: skip
            tuned_backend.close()
        for label in ("merged, Q4_1", "merged, Q8_0"):
            gap = np.abs(effects[label] - effects["lora, Q4_1"])
            print(f"{label} against lora: effects differ by {gap.mean():.3f} on average (at most {gap.max():.3f}); "
                  f"correlation {np.corrcoef(effects[label], effects['lora, Q4_1'])[0, 1]:.3f}")  # fmt: skip

if __name__ == "__main__":
    main()
