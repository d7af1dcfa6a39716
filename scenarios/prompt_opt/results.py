"""The test-set comparison of the methods: means with intervals, paired differences, and an honest verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats as sps
from recarena.simulator.data.streams import PROMPT_OPT_BOOTSTRAP

from recarena.scenarios.comparisons import bootstrap_ci, p_value_of


def _mean_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    draws = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def _seed_interval(means: Sequence[float]) -> tuple[float, float]:
    """95% t-interval of the mean over seeds (NaN with fewer than two)."""
    if len(means) < 2:
        return float("nan"), float("nan")
    values = np.asarray(means, float)
    half = sps.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def compare_methods(per_seed: list[dict[str, Any]], methods: list[str], n_boot: int, seed: int) -> dict[str, Any]:
    """Per method: test mean, 95% bootstrap CI over the test cases of every seed, t-interval over seeds,
    the paired difference against ``initial`` and ``best-of-n``, validation and spend figures."""
    rng = PROMPT_OPT_BOOTSTRAP.generator(seed)
    scores = {m: np.concatenate([np.asarray(s["methods"][m]["test_scores"], float) for s in per_seed]) for m in methods}
    out: dict[str, Any] = {}
    for m in methods:
        runs = [s["methods"][m] for s in per_seed]
        seed_means = [r["test_mean"] for r in runs]
        low, high = _mean_ci(scores[m], rng, n_boot)
        s_low, s_high = _seed_interval(seed_means)
        figures: dict[str, Any] = {
            "test_mean": float(scores[m].mean()) if len(scores[m]) else None, "ci_low": low, "ci_high": high,
            "seed_means": seed_means, "seed_ci_low": s_low, "seed_ci_high": s_high,
            "valid_best": float(np.mean([r["best"]["valid_mean"] for r in runs])),
            "valid_initial": float(np.mean([r["candidates"][0]["valid_mean"] for r in runs])),
            "changed_seeds": sum(bool(r["changed"]) for r in runs), "seeds": len(runs),
            "requests": float(np.mean([r["cost"]["requests"] for r in runs])),
            "ranker_requests": float(np.mean([r["cost_by_role"].get("ranker", {}).get("requests", 0) for r in runs])),
            "optimiser_requests": float(np.mean([r["cost_by_role"].get("optimiser", {}).get("requests", 0) for r in runs])),
            "tokens": float(np.mean([r["cost"]["prompt_tokens"] + r["cost"]["completion_tokens"] for r in runs])),
            "cost_usd": float(np.mean([r["cost"]["cost_usd"] for r in runs])),
            "candidates": float(np.mean([len(r["candidates"]) for r in runs])),
            "rejected": float(np.mean([sum(not c["accepted"] for c in r["candidates"]) for r in runs])),
            "test_misses": int(sum(r["test_misses"] for r in runs)),
            "stopped": sorted({r["stopped"] for r in runs}),
        }  # fmt: skip
        for reference in ("initial", "best-of-n"):
            if reference in scores and reference != m:
                d_low, d_high = bootstrap_ci(scores[reference], scores[m], "paired", rng, n_boot)
                figures[f"vs_{reference}"] = {
                    "effect": float(scores[m].mean() - scores[reference].mean()), "ci_low": d_low, "ci_high": d_high,
                    "p_value": p_value_of(scores[reference], scores[m], "paired", "t"),
                }  # fmt: skip
        out[m] = figures
    return out


def _judge(effect: dict[str, Any]) -> str:
    low, high = effect["ci_low"], effect["ci_high"]
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "cannot tell"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no clear difference"


def verdict(comparison: dict[str, Any], methods: list[str]) -> list[str]:
    """One honest line per optimiser: did it find anything, and does it beat best-of-N at equal cost?"""
    lines = []
    for m in methods:
        if m in ("initial", "best-of-n"):
            continue
        c = comparison[m]
        if c["changed_seeds"] == 0:
            lines.append(f"{m}: found no prompt that scored higher than the initial one on validation, so it kept the "
                         f"initial prompt in every seed - no gain.")  # fmt: skip
            continue
        parts = [f"{m}: chose a new prompt in {c['changed_seeds']} of {c['seeds']} seeds (validation {c['valid_initial']:.3f} -> {c['valid_best']:.3f})"]
        for reference in ("initial", "best-of-n"):
            effect = c.get(f"vs_{reference}")
            if effect is not None:
                parts.append(f"on test against {reference}: {effect['effect']:+.3f} NDCG@10 "
                             f"[{effect['ci_low']:+.3f}, {effect['ci_high']:+.3f}], {_judge(effect)}")  # fmt: skip
        effect = c.get("vs_best-of-n")
        if effect is not None:
            parts.append("it earns its place (beats best-of-N at equal cost)" if _judge(effect) == "better"
                         else "it has not earned its place: it does not beat best-of-N random paraphrases at equal cost")  # fmt: skip
        lines.append("; ".join(parts) + ".")
    if "best-of-n" in methods and "best-of-n" in comparison and "initial" in comparison:
        effect = comparison["best-of-n"].get("vs_initial")
        if effect is not None:
            lines.append(f"best-of-n against initial on test: {effect['effect']:+.3f} [{effect['ci_low']:+.3f}, {effect['ci_high']:+.3f}], {_judge(effect)}.")
    return lines
