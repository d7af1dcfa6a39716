"""What the preference models' disk cache saves: a fresh fit against reading the stored fit, on ml-100k.

    .venv/bin/python benchmarks/preference_cache.py [--repeats 3]

Both in the same run, on the leave-one-out training part (what `recarena ab` fits on), in a temporary cache
folder: `fit_preferences` (the fit the users' kit did every time before the cache), then
`fitted_preferences` once to store the fit, then `--repeats` reads of the stored fit. It checks that the read
arrays equal the fresh fit's and prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from recarena.agents.preference_cache import fitted_preferences
from recarena.agents.preferences import PreferenceConfig, PreferenceModel, fit_preferences
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="reads of the stored fit (the median is reported)")
    args = parser.parse_args()
    train = leave_one_out(load_dataset("ml-100k")).train_dataset()
    config = PreferenceConfig(seed=0)
    started = time.perf_counter()
    fresh = fit_preferences(train, config)
    fit_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        fitted_preferences(train, config, home=Path(home))
        store_seconds = time.perf_counter() - started
        reads = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            read = fitted_preferences(train, config, home=Path(home))
            reads.append(time.perf_counter() - started)
    for field in fields(PreferenceModel):
        if field.name != "seen":
            np.testing.assert_array_equal(np.asarray(getattr(read, field.name)), np.asarray(getattr(fresh, field.name)))
    assert read.seen == fresh.seen
    read_seconds = float(np.median(reads))
    print(f"machine: {platform.machine()}, torch threads {torch.get_num_threads()}; ml-100k leave-one-out training part")
    print(f"fresh fit (fit_preferences)          {fit_seconds:8.2f} s   1.00x")
    print(f"first fitted_preferences (fit+store) {store_seconds:8.2f} s   {store_seconds / fit_seconds:.2f}x")
    print(f"stored fit read (median of {args.repeats})       {read_seconds:8.3f} s   {fit_seconds / read_seconds:.0f}x faster; arrays identical")


if __name__ == "__main__":
    main()
