"""Statistics of an A/B test: effects against a control with bootstrap intervals, tests, Holm, power.

The unit is the simulated user (the unit a live test randomises). For a per-user metric
(one number per user and arm, NaN where undefined, e.g. the mean rating of a user who
watched nothing):

* the **effect** is ``mean(treatment) - mean(control)`` over users, with a 95% percentile
  bootstrap interval that resamples users (paired: the same users in both arms together;
  split: each arm's users on their own);
* the **test** is the paired t-test or the Wilcoxon signed-rank test on the per-user
  differences (paired design), or Welch's t-test or the Mann-Whitney U test (split design);
* `holm` adjusts a family of p-values (all arms x all metrics) for multiple comparisons;
* `users_for_power` is the smallest number of users (per arm for split designs) at which
  the two-sided t-test at ``alpha`` detects the observed effect with the asked power,
  computed from the non-central t distribution (exact for normal data).

A population metric (catalogue coverage, exposure Gini) has no per-user value: its effect
gets a bias-corrected bootstrap interval over users and a permutation p-value (paired: arm labels swapped
within users at random; split: users reassigned at random), see `population_comparison`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence

import numpy as np
from scipy import stats as sps

Design = Literal["paired", "split"]
TestKind = Literal["t", "rank"]


@dataclass(frozen=True)
class Comparison:
    """One metric of one arm against the control."""

    metric: str
    arm: str
    control_value: float
    arm_value: float
    effect: float
    """arm - control."""
    ci_low: float
    ci_high: float
    p_value: float
    """Of the chosen test (``test``), before any correction."""
    test: str
    n_control: int
    n_arm: int
    relative_effect: float = float("nan")
    """effect / control_value."""
    p_holm: float = float("nan")
    """After Holm's correction across the whole family (arms x metrics)."""
    users_for_power: float = float("nan")
    """Users (per arm for split) needed to detect this effect at 80% power; inf when the effect is 0."""
    p_other: float = float("nan")
    """The other test's p-value (rank test when ``test`` is a t-test, and vice versa), for reference."""

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def bootstrap_ci(
    control: np.ndarray,
    arm: np.ndarray,
    design: Design,
    rng: np.random.Generator,
    n_boot: int = 2000,
    level: float = 0.95,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(arm) - statistic(control)``.

    `statistic` maps a ``[n_boot, n]`` array of resampled values to ``[n_boot]`` (default: the
    NaN-ignoring mean). Paired: rows of users are resampled together."""
    statistic = statistic or (lambda x: _nanmean_rows(x))
    control, arm = np.asarray(control, float), np.asarray(arm, float)
    if design == "paired":
        if len(control) != len(arm):
            raise ValueError(f"paired bootstrap needs equal lengths, got {len(control)} and {len(arm)}")
        index = rng.integers(0, len(control), size=(n_boot, len(control)))
        draws = statistic(arm[index]) - statistic(control[index])
    else:
        draws = statistic(arm[rng.integers(0, len(arm), size=(n_boot, len(arm)))]) - statistic(
            control[rng.integers(0, len(control), size=(n_boot, len(control)))]
        )
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    counts = finite.sum(1)
    sums = np.where(finite, x, 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def p_value_of(control: np.ndarray, arm: np.ndarray, design: Design, kind: TestKind) -> float:
    """Two-sided p-value; NaN where the test is undefined (too few users, no variation)."""
    control, arm = np.asarray(control, float), np.asarray(arm, float)
    if design == "paired":
        keep = np.isfinite(control) & np.isfinite(arm)
        diff = arm[keep] - control[keep]
        if len(diff) < 2 or np.all(diff == diff[0]):
            return 1.0 if len(diff) >= 2 and diff[0] == 0 else float("nan")
        if kind == "t":
            return float(sps.ttest_1samp(diff, 0.0).pvalue)
        if np.all(diff == 0):
            return 1.0
        return float(sps.wilcoxon(diff, zero_method="wilcox").pvalue)
    control, arm = control[np.isfinite(control)], arm[np.isfinite(arm)]
    if len(control) < 2 or len(arm) < 2:
        return float("nan")
    if kind == "t":
        if np.var(control) == 0 and np.var(arm) == 0:
            return 1.0 if control[0] == arm[0] else 0.0
        return float(sps.ttest_ind(arm, control, equal_var=False).pvalue)
    return float(sps.mannwhitneyu(arm, control, alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs stay NaN and do not count in the family)."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def t_test_power(n: int, effect_size: float, design: Design, alpha: float = 0.05) -> float:
    """Power of the two-sided t-test with `n` users (per arm for split) at standardised `effect_size`.

    Paired: `effect_size` is mean difference / sd of the differences (one-sample t on differences).
    Split: mean difference / pooled sd, two equal arms (Student's t; Welch's is close)."""
    if n < 2:
        return 0.0
    if design == "paired":
        df, noncentrality = n - 1, effect_size * math.sqrt(n)
    else:
        df, noncentrality = 2 * n - 2, effect_size * math.sqrt(n / 2)
    critical = sps.t.ppf(1 - alpha / 2, df)
    return float(sps.nct.sf(critical, df, noncentrality) + sps.nct.cdf(-critical, df, noncentrality))


def users_for_power(effect_size: float, design: Design, alpha: float = 0.05, power: float = 0.8, cap: int = 10_000_000) -> float:
    """Smallest n (per arm for split) whose t-test power reaches `power`; inf for a zero or NaN effect."""
    d = abs(float(effect_size))
    if not math.isfinite(d) or d == 0:
        return float("inf")
    # Start from the normal approximation, then step to the exact non-central-t answer.
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    n = max(2, int(math.ceil((z / d) ** 2 * (1 if design == "paired" else 2))))
    if n > cap:
        return float(n)
    while n > 2 and t_test_power(n - 1, d, design, alpha) >= power:
        n -= 1
    while t_test_power(n, d, design, alpha) < power:
        n += 1
        if n > cap:
            return float(n)
    return float(n)


def standardised_effect(control: np.ndarray, arm: np.ndarray, design: Design) -> float:
    """Cohen's d (split: pooled sd) or d_z (paired: sd of the differences) of the observed data."""
    control, arm = np.asarray(control, float), np.asarray(arm, float)
    if design == "paired":
        keep = np.isfinite(control) & np.isfinite(arm)
        diff = arm[keep] - control[keep]
        sd = np.std(diff, ddof=1) if len(diff) > 1 else float("nan")
        return float(np.mean(diff) / sd) if sd and np.isfinite(sd) else (float("inf") if len(diff) and np.mean(diff) else float("nan"))
    control, arm = control[np.isfinite(control)], arm[np.isfinite(arm)]
    if len(control) < 2 or len(arm) < 2:
        return float("nan")
    pooled = math.sqrt(((len(control) - 1) * np.var(control, ddof=1) + (len(arm) - 1) * np.var(arm, ddof=1)) / (len(control) + len(arm) - 2))
    return float((np.mean(arm) - np.mean(control)) / pooled) if pooled else float("nan")


def compare_users(
    metric: str, arm_name: str, control: np.ndarray, arm: np.ndarray, design: Design, kind: TestKind, rng: np.random.Generator,
    n_boot: int = 2000, alpha: float = 0.05, power: float = 0.8,
) -> Comparison:
    """A per-user metric of `arm` against `control` (see the module docstring)."""
    control, arm = np.asarray(control, float), np.asarray(arm, float)
    if design == "paired":
        keep = np.isfinite(control) & np.isfinite(arm)
        control_value, arm_value = float(np.mean(control[keep])) if keep.any() else float("nan"), float(np.mean(arm[keep])) if keep.any() else float("nan")
        n_control = n_arm = int(keep.sum())
        low, high = bootstrap_ci(control[keep], arm[keep], design, rng, n_boot) if keep.sum() > 1 else (float("nan"), float("nan"))
    else:
        c, a = control[np.isfinite(control)], arm[np.isfinite(arm)]
        control_value = float(np.mean(c)) if len(c) else float("nan")
        arm_value = float(np.mean(a)) if len(a) else float("nan")
        n_control, n_arm = len(c), len(a)
        low, high = bootstrap_ci(c, a, design, rng, n_boot) if len(c) > 1 and len(a) > 1 else (float("nan"), float("nan"))
    effect = arm_value - control_value
    other: TestKind = "rank" if kind == "t" else "t"
    d = standardised_effect(control, arm, design)
    return Comparison(
        metric=metric, arm=arm_name, control_value=control_value, arm_value=arm_value, effect=effect,
        ci_low=low, ci_high=high, p_value=p_value_of(control, arm, design, kind), test=test_name(design, kind),
        n_control=n_control, n_arm=n_arm,
        relative_effect=effect / control_value if control_value else float("nan"),
        users_for_power=users_for_power(d, design, alpha, power) if math.isfinite(d) else (2.0 if d else float("inf")),
        p_other=p_value_of(control, arm, design, other),
    )  # fmt: skip


def test_name(design: Design, kind: TestKind) -> str:
    return {("paired", "t"): "paired t", ("paired", "rank"): "Wilcoxon signed-rank",
            ("split", "t"): "Welch t", ("split", "rank"): "Mann-Whitney U"}[(design, kind)]  # fmt: skip


def population_comparison(
    metric: str, arm_name: str, control_counts: np.ndarray, arm_counts: np.ndarray, figure: Callable[[np.ndarray], np.ndarray],
    design: Design, rng: np.random.Generator, n_boot: int = 1000, n_permutations: int = 1000,
) -> Comparison:
    """A population metric from per-user count rows (``[users, items]`` exposures): bootstrap CI, permutation p.

    `figure` maps ``[b, items]`` summed counts to ``[b]`` figures (e.g. coverage, Gini)."""
    control_counts, arm_counts = np.asarray(control_counts, float), np.asarray(arm_counts, float)
    observed_control = float(figure(control_counts.sum(0)[None])[0])
    observed_arm = float(figure(arm_counts.sum(0)[None])[0])
    effect = observed_arm - observed_control
    nc, na = len(control_counts), len(arm_counts)

    def summed(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return weights @ counts

    if design == "paired":
        weights = _multiplicities(rng, nc, n_boot)
        boot = figure(summed(arm_counts, weights)) - figure(summed(control_counts, weights))
        swap = rng.random((n_permutations, nc)) < 0.5
        perm_arm = (~swap) @ arm_counts + swap @ control_counts
        perm_control = swap @ arm_counts + (~swap) @ control_counts
        null = figure(perm_arm) - figure(perm_control)
    else:
        boot = figure(summed(arm_counts, _multiplicities(rng, na, n_boot))) - figure(summed(control_counts, _multiplicities(rng, nc, n_boot)))
        pooled = np.concatenate([control_counts, arm_counts])
        labels = np.zeros((n_permutations, nc + na), dtype=bool)
        for row in labels:
            row[rng.choice(nc + na, na, replace=False)] = True
        null = figure(labels @ pooled) - figure((~labels) @ pooled)
    # Resampling users duplicates some, which lowers coverage-like figures: shift the percentile
    # interval by the bootstrap's own bias so that it is centred on the observed effect.
    bias = float(np.mean(boot)) - effect
    low, high = np.percentile(boot, [2.5, 97.5]) - bias
    p = (1 + np.sum(np.abs(null) >= abs(effect) - 1e-12)) / (n_permutations + 1)
    return Comparison(
        metric=metric, arm=arm_name, control_value=observed_control, arm_value=observed_arm, effect=effect,
        ci_low=float(low), ci_high=float(high), p_value=float(p), test="permutation", n_control=nc, n_arm=na,
        relative_effect=effect / observed_control if observed_control else float("nan"),
    )  # fmt: skip


def _multiplicities(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``[n_boot, n]`` counts of each user in a bootstrap resample."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def coverage_of(counts: np.ndarray) -> np.ndarray:
    """Share of items shown at least once, per row of summed counts ``[b, items]``."""
    return (np.asarray(counts) > 0).mean(1)


def gini_of(counts: np.ndarray) -> np.ndarray:
    """Gini coefficient of each row of non-negative counts (0: equal exposure, 1: one item only)."""
    x = np.sort(np.asarray(counts, float), axis=1)
    n = x.shape[1]
    total = x.sum(1)
    weights = 2 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (x @ weights) / (n * total), np.nan)


def false_positive_bounds(runs: int, alpha: float = 0.05, tail: float = 0.0025) -> tuple[int, int]:
    """Counts [lo, hi] of A/A runs with p < `alpha` that an honest test (a true false-positive rate of `alpha`) leaves
    with probability under `tail` on each side: the bounds an A/A self-check holds each metric to."""
    hi = int(sps.binom.isf(tail, runs, alpha))
    while sps.binom.sf(hi, runs, alpha) >= tail:
        hi += 1
    lo = int(sps.binom.ppf(tail, runs, alpha))
    while lo > 0 and sps.binom.cdf(lo - 1, runs, alpha) >= tail:
        lo -= 1
    return lo, hi
