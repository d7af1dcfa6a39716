"""What the offline benchmarks share: build a registry model, fit it on a split, time the fit."""

from __future__ import annotations

import time

from recarena.recommenders import Recommender, build_recommender
from recarena.simulator.data.splits import Split


def fit_timed(model: str, params: dict, split: Split, seed: int, threads: int) -> tuple[Recommender, float]:
    """`model` built from `params` (seeded, on `threads` torch threads, no progress bar), fitted on the split's
    training part with early stopping on its validation part; and the fit's wall seconds."""
    params = {**params, "seed": seed, "threads": threads}
    if model != "pop":
        params["progress"] = False
    rec = build_recommender(model, params)
    started = time.perf_counter()
    rec.fit(split.train_dataset(), valid=split.valid)
    return rec, time.perf_counter() - started
