"""LLM users against a real OpenAI-compatible endpoint: user-pages per second at several concurrency
limits, and the share of wall time when no LLM call is in flight (the simulator's own overhead).

A real ``llama_cpp.server`` serving SmolLM2 runs on 127.0.0.1 (or give ``--base-url`` for vLLM, Ollama
or a hosted API). The same users, seeds and slates run at each concurrency; the baseline is
concurrency 1. "Outside the LLM" is wall time not covered by any call's [start, end] interval.

    .venv/bin/python benchmarks/llm_concurrency.py --users 16 --pages 2 --concurrency 1 4 16
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from recarena.agents.contract import SessionContext
from recarena.agents.kit import build_user_kit
from recarena.agents.llm import Backend, ChatRequest, RawCompletion, RawScore, ScoreRequest
from recarena.agents.llm.embedded import smollm2_gguf_path
from recarena.agents.llm.factory import LLMConfig, backend_from_string, make_llm
from recarena.agents.llm.local_server import LocalLlamaServer
from recarena.recommenders import build_recommender
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.sessions import show_pages


class TimedBackend(Backend):
    """Passes calls through and records each call's wall-clock interval."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.max_concurrency = inner, inner.name, inner.max_concurrency
        self.intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        return self.inner.identity()

    def secrets(self) -> list[str]:
        return self.inner.secrets()

    def _timed(self, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.intervals.append((started, time.perf_counter()))

    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        return self._timed(self.inner.complete, request, timeout_s)

    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        return self._timed(self.inner.score_options, request, timeout_s)


def covered(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] inside at least one interval."""
    total, reach = 0.0, start
    for a, b in sorted(intervals):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def run_once(kit, recommender, users: np.ndarray, backend: TimedBackend, concurrency: int, pages: int, slate_size: int,
             seed: int) -> dict[str, float]:  # fmt: skip
    llm = make_llm(backend, LLMConfig(concurrency=concurrency, progress=False))
    people = [kit.llm_user(int(u), np.random.default_rng([seed, int(u)]), llm) for u in users]
    for person in people:
        person.start_session(SessionContext())
    backend.intervals.clear()
    started = time.perf_counter()
    user_pages = 0
    active = list(range(len(people)))
    for _ in range(pages):
        if not active:
            break
        page = recommender.recommend(users[active], k=slate_size, exclude="seen")
        reactions = show_pages([people[i] for i in active], [list(row) for row in page.items], threads=concurrency)
        user_pages += len(active)
        active = [i for i, reaction in zip(active, reactions) if not reaction.leave]
    wall = time.perf_counter() - started
    busy = covered(backend.intervals, started, started + wall)
    total = llm.accountant.total()
    return {"concurrency": concurrency, "user_pages": user_pages, "seconds": wall, "pages_per_s": user_pages / wall,
            "calls": total.calls, "fallbacks": total.fallbacks, "outside_share": 1 - busy / wall,
            "prompt_tokens": total.prompt_tokens, "completion_tokens": total.completion_tokens}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16, help="LLM users (ml-100k users drawn with the seed)")
    parser.add_argument("--pages", type=int, default=2, help="most pages per user")
    parser.add_argument("--slate-size", type=int, default=5, help="items per page")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="calls in flight at once")
    parser.add_argument("--server-threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads of the local server")
    parser.add_argument("--base-url", default=None, help="use this OpenAI-compatible endpoint instead of a local llama_cpp.server")
    parser.add_argument("--model", default="smollm2", help="model name sent to the endpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset)
    train = split.train_dataset()
    kit = build_user_kit(train, seed=args.seed)
    recommender = build_recommender("pop").fit(train)
    users = np.random.default_rng(args.seed).choice(train.n_users, size=args.users, replace=False)

    rows = []
    with tempfile.TemporaryDirectory() as logs:
        server = None
        if args.base_url is None:
            server = LocalLlamaServer(smollm2_gguf_path(), Path(logs), n_threads=args.server_threads)
            server.start()
        base_url = args.base_url or server.base_url
        try:
            for concurrency in args.concurrency:
                backend = TimedBackend(backend_from_string(f"openai:{args.model}@{base_url}", LLMConfig(concurrency=max(args.concurrency))))
                rows.append(run_once(kit, recommender, users, backend, concurrency, args.pages, args.slate_size, args.seed))
                print(f"concurrency {concurrency}: {rows[-1]['pages_per_s']:.2f} user-pages/s", file=sys.stderr)
        finally:
            if server is not None:
                server.stop()
    baseline = rows[0]["pages_per_s"]
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    where = args.base_url or f"local llama_cpp.server (SmolLM2-135M, {args.server_threads} threads)"
    print(f"## LLM users against an endpoint: {where}\n")
    print(f"Command: `{command}`  ")
    print(f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, no GPU, Python {platform.python_version()}  ")
    print(f"{args.users} LLM-only users (pop slates), up to {args.pages} pages of {args.slate_size}; no answer cache.\n")
    print("| concurrency | user-pages | seconds | user-pages/s | x concurrency 1 | LLM calls | fallbacks | wall share outside LLM calls |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['user_pages']} | {r['seconds']:.1f} | {r['pages_per_s']:.2f} | {r['pages_per_s'] / baseline:.2f} | "
              f"{r['calls']} | {r['fallbacks']} | {r['outside_share']:.1%} |")  # fmt: skip
    first = rows[0]
    print(f"\nPer user-page: {first['calls'] / first['user_pages']:.1f} LLM calls, {first['prompt_tokens'] / first['user_pages']:.0f} prompt "
          f"tokens, {first['completion_tokens'] / first['user_pages']:.1f} completion tokens (the figures docs/scaling.md builds on).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
