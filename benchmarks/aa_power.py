"""The A/A self-check with power (issue 23): enough runs that a false-positive rate of 0.08 fails, and planted effects.

    .venv/bin/python benchmarks/aa_power.py [--runs 2000] [--planted-runs 200] [--users 200] [--seed 0]

On ml-100k with statistical users (the vectorised path of `run_aa`), the pop recommender against itself:

1. **A/A, paired and split** (`--runs` runs each, `--users` users): per metric the false-positive rate at
   alpha 0.05 against binomial bounds chosen so that a true rate of 0.05 falls outside with probability
   under 0.5% and a true 0.08 falls inside with the probability printed (2000 runs: 0.4%); a KS test of
   the p-values' uniformity; the mean of z^2 (the p-value's normal score squared, 1 under the null; a test
   whose statistic is inflated by c has c^2).
2. **Planted effects** (`--planted-runs` runs per size, paired): the second arm's users' watch logits moved by
   `run_aa(planted_watch_shift=...)`; per size the watch rate's mean difference and the share of runs with
   p < alpha, beside the power computed from that difference and the SD of the A/A runs' differences
   (the baseline, measured in the same run): ``Phi(d / sd - z_0.975) + Phi(-d / sd - z_0.975)``.

The in-suite test (tests/scenarios/ab/test_selfchecks.py) is the cheaper version of this; its bounds and
power are stated in its docstrings. Figures: BENCHMARKS.md, "The A/A self-check's power".
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy import stats

from recarena.scenarios.ab.scenario import ABConfig, build_world
from recarena.scenarios.ab.selfcheck import run_aa
from recarena.scenarios.comparisons import false_positive_bounds as rate_bounds

METRICS = ("watch_rate", "mean_rating", "pages", "satisfaction")


def describe_aa(result: dict, label: str) -> bool:
    runs = result["runs"]
    lo, hi = rate_bounds(runs)
    inside = stats.binom.cdf(hi, runs, 0.08) - stats.binom.cdf(lo - 1, runs, 0.08)
    print(f"\n{label}: {runs} runs of {result['users']} users, {result['design']} design; bounds on the rate "
          f"[{lo / runs:.4f}, {hi / runs:.4f}] (P(outside | 0.05) = "
          f"{stats.binom.sf(hi, runs, 0.05) + stats.binom.cdf(lo - 1, runs, 0.05):.4f}, P(inside | 0.08) = {inside:.4f})")
    print(f"  {'metric':<13} {'FP rate':>8} {'in bounds':>9} {'KS p':>7} {'mean z^2':>9} {'mean diff':>10}")
    ok = True
    for m in METRICS:
        p = np.asarray(result["p_values"][m], float)
        p = p[np.isfinite(p)]
        count = int((p < 0.05).sum())
        z2 = stats.norm.isf(np.clip(p, 1e-300, 1.0) / 2) ** 2
        within = lo <= count <= hi
        ok &= within
        print(f"  {m:<13} {count / len(p):>8.4f} {'yes' if within else 'NO':>9} {stats.kstest(p, 'uniform').pvalue:>7.3f} "
              f"{z2.mean():>9.3f} {result['mean_difference'][m]:>+10.4f}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="A/A runs per design")
    parser.add_argument("--planted-runs", type=int, default=200, help="runs per planted effect size")
    parser.add_argument("--shifts", default="0.1,0.2,0.25,0.3", help="planted watch-logit shifts")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, python {platform.python_version()}")
    started = time.perf_counter()
    world = build_world(ABConfig(arms="pop", aa=True, seed=args.seed, progress=False).world_spec())
    print(f"world (pop, statistical users' kit): {time.perf_counter() - started:.1f} s")

    results = {}
    for design in ("paired", "split"):
        started = time.perf_counter()
        config = ABConfig(arms="pop", aa=True, users=args.users, design=design, seed=args.seed, progress=False)
        results[design] = run_aa(config, world, runs=args.runs)
        seconds = time.perf_counter() - started
        ok = describe_aa(results[design], f"A/A {design}")
        print(f"  {'all metrics within bounds' if ok else 'SOME METRIC OUTSIDE ITS BOUNDS'}; {seconds:.0f} s, "
              f"{seconds / args.runs * 1000:.0f} ms a run")

    baseline = np.asarray(results["paired"]["differences"]["watch_rate"], float)
    sd = float(np.nanstd(baseline, ddof=1))
    z = stats.norm.isf(0.025)
    print(f"\nPlanted effects (paired, {args.planted_runs} runs each, {args.users} users); baseline: the A/A runs' watch-rate "
          f"difference has SD {sd:.5f} (mean {np.nanmean(baseline):+.5f})")
    print(f"  {'logit shift':>11} {'watch-rate diff':>16} {'power computed':>15} {'detected':>9} {'+-1.96 SE':>9} "
          f"{'satisfaction det.':>17}")
    config = ABConfig(arms="pop", aa=True, users=args.users, seed=args.seed + 1, progress=False)
    for shift in (float(s) for s in args.shifts.split(",")):
        result = run_aa(config, world, runs=args.planted_runs, planted_watch_shift=shift)
        effect = result["mean_difference"]["watch_rate"]
        power = stats.norm.cdf(effect / sd - z) + stats.norm.cdf(-effect / sd - z)
        detected = result["false_positive_rate"]["watch_rate"]
        se = 1.96 * np.sqrt(detected * (1 - detected) / args.planted_runs)
        print(f"  {shift:>11.2f} {effect:>+16.4f} {power:>15.3f} {detected:>9.3f} {se:>9.3f} "
              f"{result['false_positive_rate']['satisfaction']:>17.3f}")


if __name__ == "__main__":
    main()
