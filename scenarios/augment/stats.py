"""Statistics of `recarena augment`: each augmentation against real-only training, with two intervals.

For one regime, recommender and metric, every variant has one value per evaluated user and
replicate (the same test users and items for every variant). The comparison of variant A with
baseline B uses the per-user differences averaged over the replicates:

* **effect**: the mean of those differences (= mean metric of A - mean metric of B);
* **interval over users**: paired percentile bootstrap over users (what another draw of
  users would give);
* **interval over replicates**: the t interval of the replicates' mean differences (what
  another sparse cut, simulation and model seed would give); none with one replicate;
* **p**: the paired t-test on the per-user differences;
* **verdict**: ``gain`` when both intervals lie above zero, ``loss`` when both lie below,
  otherwise ``no clear difference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from recarena.simulator.data.streams import AUGMENT_BOOTSTRAP
from scipy import stats as sps

from recarena.scenarios.comparisons import bootstrap_ci, p_value_of

METRICS = ("ndcg@10", "recall@10")


def pairs_of(variants: Sequence[str]) -> list[tuple[str, str]]:
    """(variant, baseline): every augmentation against real only, then simulated against each naive one (volume alone)."""
    naive = [v for v in variants if v not in ("real", "simulated")]
    return [(v, "real") for v in variants if v != "real"] + [("simulated", b) for b in naive]


def seed_interval(differences: Sequence[float], level: float) -> tuple[float | None, float | None]:
    values = np.asarray(differences, float)
    if len(values) < 2:
        return None, None
    half = sps.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def verdict(user_ci: tuple[float, float], seed_ci: tuple[float | None, float | None]) -> str:
    lows = [user_ci[0]] + ([seed_ci[0]] if seed_ci[0] is not None else [])
    highs = [user_ci[1]] + ([seed_ci[1]] if seed_ci[1] is not None else [])
    if all(low > 0 for low in lows):
        return "gain"
    if all(high < 0 for high in highs):
        return "loss"
    return "no clear difference"


def compare(variant: list[pd.DataFrame], baseline: list[pd.DataFrame], metric: str, rng: np.random.Generator, n_boot: int,
            level: float) -> dict[str, Any]:
    """`variant` against `baseline` (one per-user frame per replicate, same users) on `metric`."""
    arm = np.mean([frame[metric].to_numpy() for frame in variant], axis=0)
    control = np.mean([frame[metric].to_numpy() for frame in baseline], axis=0)
    low, high = bootstrap_ci(control, arm, "paired", rng, n_boot, level)
    per_seed = [float(a[metric].mean() - b[metric].mean()) for a, b in zip(variant, baseline)]
    seed_low, seed_high = seed_interval(per_seed, level)
    effect = float(arm.mean() - control.mean())
    return {"metric": metric, "effect": effect, "relative": effect / float(control.mean()) if control.mean() else None,
            "ci_low": low, "ci_high": high, "seed_ci_low": seed_low, "seed_ci_high": seed_high, "per_seed": per_seed,
            "p_value": p_value_of(control, arm, "paired", "t"), "verdict": verdict((low, high), (seed_low, seed_high))}  # fmt: skip


def summarise(metrics: dict[tuple[str, str, str], list[pd.DataFrame]], volumes: dict[str, list[dict[str, Any]]],
              variants: Sequence[str], *, regimes: Sequence[str], recommenders: Sequence[str], seed: int, bootstrap: int,
              level: float, seeds: int) -> dict[str, Any]:
    """The results' ``regimes`` block: per regime, the data volumes and per recommender each variant and comparison.

    `metrics` holds per-user frames by (regime, recommender, variant), one per replicate (`seeds` of them);
    intervals have confidence `level`, from `bootstrap` resamples drawn with `seed`."""
    rng = AUGMENT_BOOTSTRAP.generator(seed)
    out: dict[str, Any] = {}
    for regime in regimes:
        models: dict[str, Any] = {}
        for name in recommenders:
            frames = {v: metrics[(regime, name, v)] for v in variants}
            scores = {v: {m: {"mean": float(np.mean([f[m].mean() for f in frames[v]])),
                              "per_seed": [float(f[m].mean()) for f in frames[v]]} for m in METRICS} for v in variants}  # fmt: skip
            comparisons = [{"variant": a, "baseline": b, **compare(frames[a], frames[b], m, rng, bootstrap, level)}
                           for a, b in pairs_of(variants) for m in METRICS]  # fmt: skip
            models[name] = {"variants": scores, "comparisons": comparisons, "test_users": len(frames[variants[0]][0])}
        reps = volumes[regime]
        simulated, real = (float(np.mean([r[key] for r in reps])) for key in ("simulated", "train"))
        out[regime] = {"volumes": reps, "synthetic_per_real": simulated / max(real, 1.0), "models": models}
    return {"regimes": out, "metrics": list(METRICS), "level": level, "seeds": seeds,
            "variants": list(variants), "pairs": [list(p) for p in pairs_of(variants)]}  # fmt: skip
