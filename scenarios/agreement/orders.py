"""How far a simulated A/B agrees with reality: the order of the arms, and their pairs.

Each side gives, per arm, one figure per user: the **real** side a held-out figure of each
evaluated user (NDCG@10 of the user's test item), the **simulated** side the A/B's primary
metric of each simulated user. Within a side the users are the same for every arm (both are
paired designs: every evaluated user is scored by every model, every simulated user meets
every arm), so a side's arrays are aligned by user; the two sides may hold different users.

* `rank_agreement`: Spearman and Kendall between the arms' mean real figure and mean simulated
  figure, with 95% percentile bootstrap intervals. A replicate resamples each side's users
  (the same draw for every arm of that side), so the interval carries the noise of both.
* `pair_verdicts`: for every pair of arms, is the real difference **clear** (relative
  difference of at least `clear` and a bootstrap interval that excludes zero), and is the
  simulated A/B's winner **significant** (paired test, Holm across the pairs)? A clear pair is
  ``agree`` when the simulated significant winner is the real winner, ``disagree`` when it is
  the other arm, ``undecided`` when the simulation finds no significant difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import stats as sps

from recarena.scenarios.comparisons import bootstrap_ci, holm, p_value_of

Verdict = Literal["agree", "disagree", "undecided", "unclear"]


@dataclass(frozen=True)
class RankAgreement:
    """Rank correlations between the real and the simulated order of the arms."""

    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    real_order: list[str]
    """Arms from the worst to the best real figure."""
    simulated_order: list[str]
    """Arms from the worst to the best simulated figure."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairVerdict:
    """One pair of arms on both sides (differences are ``better - other`` by the real figure)."""

    better: str
    """The arm with the higher mean real figure."""
    other: str
    real_difference: float
    real_relative: float
    """real_difference / the other arm's mean real figure (inf when that is 0)."""
    real_ci: tuple[float, float]
    real_clear: bool
    simulated_difference: float
    simulated_p_holm: float
    verdict: Verdict

    def as_dict(self) -> dict:
        return asdict(self)


def _check(side: dict[str, np.ndarray], what: str) -> list[str]:
    arms = list(side)
    if len(arms) < 2:
        raise ValueError(f"{what}: need at least two arms, got {arms}")
    lengths = {len(np.asarray(v)) for v in side.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"{what}: every arm needs the same, non-zero number of users (paired), got {sorted(lengths)}")
    return arms


def _means(side: dict[str, np.ndarray], arms: list[str], index: np.ndarray | None = None) -> np.ndarray:
    rows = [np.asarray(side[a], float) if index is None else np.asarray(side[a], float)[index] for a in arms]
    return np.array([np.nanmean(r, axis=-1) for r in rows]).T


def _correlations(real: np.ndarray, simulated: np.ndarray) -> tuple[float, float]:
    if np.ptp(real) == 0 or np.ptp(simulated) == 0:
        return float("nan"), float("nan")
    return float(sps.spearmanr(real, simulated)[0]), float(sps.kendalltau(real, simulated)[0])


def _interval(draws: list[float], level: float = 0.95) -> tuple[float, float]:
    finite = np.asarray([d for d in draws if np.isfinite(d)])
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def rank_agreement(real: dict[str, np.ndarray], simulated: dict[str, np.ndarray], rng: np.random.Generator,
                   n_boot: int = 1000) -> RankAgreement:  # fmt: skip
    """Spearman and Kendall between the arms' real and simulated means, with bootstrap intervals over users."""
    arms = _check(real, "real")
    if set(_check(simulated, "simulated")) != set(arms):
        raise ValueError(f"the real arms {sorted(arms)} and the simulated arms {sorted(simulated)} differ")
    real_means, simulated_means = _means(real, arms), _means(simulated, arms)
    spearman, kendall = _correlations(real_means, simulated_means)
    n_real, n_simulated = len(np.asarray(real[arms[0]])), len(np.asarray(simulated[arms[0]]))
    real_draws = _means(real, arms, rng.integers(0, n_real, size=(n_boot, n_real)))
    simulated_draws = _means(simulated, arms, rng.integers(0, n_simulated, size=(n_boot, n_simulated)))
    spearmans, kendalls = zip(*(_correlations(r, s) for r, s in zip(real_draws, simulated_draws)))
    return RankAgreement(
        spearman=spearman, spearman_ci=_interval(list(spearmans)), kendall=kendall, kendall_ci=_interval(list(kendalls)),
        real_order=[arms[k] for k in np.argsort(real_means, kind="stable")],
        simulated_order=[arms[k] for k in np.argsort(simulated_means, kind="stable")],
    )  # fmt: skip


def pair_verdicts(real: dict[str, np.ndarray], simulated: dict[str, np.ndarray], rng: np.random.Generator, *,
                  clear: float = 0.10, alpha: float = 0.05, n_boot: int = 1000) -> list[PairVerdict]:  # fmt: skip
    """Every pair of arms: is the real difference clear, and does the simulated A/B's significant winner match?"""
    arms = _check(real, "real")
    _check(simulated, "simulated")
    pairs = []
    for a, b in combinations(arms, 2):
        mean_a, mean_b = np.nanmean(real[a]), np.nanmean(real[b])
        pairs.append((a, b) if mean_a >= mean_b else (b, a))
    p_holm = holm([p_value_of(np.asarray(simulated[o], float), np.asarray(simulated[b], float), "paired", "t") for b, o in pairs])
    out = []
    for (better, other), p in zip(pairs, p_holm):
        difference = float(np.nanmean(real[better]) - np.nanmean(real[other]))
        base = float(np.nanmean(real[other]))
        relative = difference / base if base > 0 else float("inf")
        ci = bootstrap_ci(np.asarray(real[other], float), np.asarray(real[better], float), "paired", rng, n_boot)
        real_clear = relative >= clear and ci[0] > 0
        simulated_difference = float(np.nanmean(simulated[better]) - np.nanmean(simulated[other]))
        if not real_clear:
            verdict: Verdict = "unclear"
        elif not (np.isfinite(p) and p < alpha):
            verdict = "undecided"
        else:
            verdict = "agree" if simulated_difference > 0 else "disagree"
        out.append(PairVerdict(better, other, difference, relative, ci, real_clear, simulated_difference, float(p), verdict))
    return out


def concordance(verdicts: list[PairVerdict]) -> dict[str, float | int]:
    """Counts of each verdict; the share of clear pairs whose simulated significant winner is the real one
    (``concordance``); and how many clear pairs the simulated means order the same way, significant or not
    (``same_direction``). NaN shares: no clear pair."""
    counts = {v: sum(p.verdict == v for p in verdicts) for v in ("agree", "disagree", "undecided", "unclear")}
    clear = counts["agree"] + counts["disagree"] + counts["undecided"]
    same = sum(p.real_clear and p.simulated_difference > 0 for p in verdicts)
    return {**counts, "clear_pairs": clear, "concordance": counts["agree"] / clear if clear else float("nan"), "same_direction": same}
