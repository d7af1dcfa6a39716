"""Rating alignment: simulated ratings against held-out real ones, beside two cheap predictors.

* **item mean**: each item's mean training rating (the global training mean for items
  without one).
* **biased MF**: ``r_ui = mu + b_u + b_i + <p_u, q_i>`` fitted by alternating least squares
  on the training ratings; the L2 strength is chosen on the validation ratings (RMSE)
  when the split has them, so nothing in the test part shapes it.

Both are point predictors: they set the bar for RMSE and MAE. For the distance between
rating *distributions* (Wasserstein-1 on the 1..5 levels) the baselines are their
predictions rounded to a level, and a draw from the training histogram (what a user who
knows nothing about the item but the site's rating habits would give).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = np.arange(1, 6)


@dataclass(frozen=True)
class BiasedMF:
    """A fitted biased matrix factorisation of ratings (see the module docstring)."""

    mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    l2: float
    """The L2 strength it was fitted with."""
    validation_rmse: float | None = None
    """RMSE on the validation ratings that chose `l2` (None without validation data)."""

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for the (user, item) pairs, clipped to 1..5."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        dot = np.einsum("nk,nk->n", self.user_factors[users], self.item_factors[items])
        return np.clip(self.mean + self.user_bias[users] + self.item_bias[items] + dot, 1.0, 5.0)


def _groups(keys: np.ndarray, n: int) -> list[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n)]


def _solve_side(groups, other_index, target, other_factors, other_bias, own_factors, own_bias, l2: float) -> None:
    """Least-squares update of one side's factors and biases with the other side fixed."""
    k = own_factors.shape[1]
    penalty = l2 * np.eye(k + 1)
    for entity, rows in enumerate(groups):
        if len(rows) == 0:
            continue
        others = other_index[rows]
        design = np.hstack([other_factors[others], np.ones((len(rows), 1))])
        residual = target[rows] - other_bias[others]
        solution = np.linalg.solve(design.T @ design + penalty, design.T @ residual)
        own_factors[entity], own_bias[entity] = solution[:k], solution[k]


def fit_biased_mf(ratings: pd.DataFrame, n_users: int, n_items: int, *, factors: int = 10, l2: float = 10.0,
                  iterations: int = 12, seed: int = 0) -> BiasedMF:
    """Fit on a frame with ``user``, ``item`` and ``rating`` columns (training ratings only)."""
    users, items = ratings["user"].to_numpy(np.int64), ratings["item"].to_numpy(np.int64)
    values = ratings["rating"].to_numpy(float)
    mean = float(values.mean())
    rng = np.random.default_rng(seed)
    user_factors = rng.normal(0.0, 0.1, (n_users, factors))
    item_factors = rng.normal(0.0, 0.1, (n_items, factors))
    # Users and items without training ratings predict from the biases alone.
    user_factors[np.bincount(users, minlength=n_users) == 0] = 0.0
    item_factors[np.bincount(items, minlength=n_items) == 0] = 0.0
    user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
    by_user, by_item = _groups(users, n_users), _groups(items, n_items)
    centred = values - mean
    for _ in range(iterations):
        _solve_side(by_user, items, centred, item_factors, item_bias, user_factors, user_bias, l2)
        _solve_side(by_item, users, centred, user_factors, user_bias, item_factors, item_bias, l2)
    return BiasedMF(mean, user_bias, item_bias, user_factors, item_factors, l2)


def tuned_biased_mf(train: pd.DataFrame, valid: pd.DataFrame, n_users: int, n_items: int, *, seed: int = 0,
                    l2_grid: tuple[float, ...] = (3.0, 10.0, 30.0)) -> BiasedMF:
    """The biased MF whose L2 strength has the lowest RMSE on `valid` (10 when `valid` is empty)."""
    if len(valid) == 0:
        return fit_biased_mf(train, n_users, n_items, seed=seed)
    best: BiasedMF | None = None
    for l2 in l2_grid:
        model = fit_biased_mf(train, n_users, n_items, l2=l2, seed=seed)
        error = rmse(model.predict(valid["user"].to_numpy(), valid["item"].to_numpy()), valid["rating"].to_numpy(float))
        if best is None or error < best.validation_rmse:
            best = BiasedMF(**{**model.__dict__, "validation_rmse": error})
    return best  # type: ignore[return-value]


def rmse(predicted: np.ndarray, real: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(real, float)) ** 2)))


def to_levels(values: np.ndarray) -> np.ndarray:
    """Ratings on any scale rounded and clipped onto the levels 1..5."""
    return np.clip(np.round(np.asarray(values, float)), 1, 5).astype(np.int64)


def histogram(values: np.ndarray) -> list[int]:
    """Counts of the levels 1..5."""
    return np.bincount(to_levels(values), minlength=6)[1:].tolist()


def wasserstein_levels(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two samples of ratings on the 1..5 levels (the area between their CDFs)."""
    a, b = to_levels(a), to_levels(b)
    cdf_a = np.array([(a <= k).mean() for k in LEVELS])
    cdf_b = np.array([(b <= k).mean() for k in LEVELS])
    return float(np.abs(cdf_a - cdf_b)[:-1].sum())


def item_means(train: pd.DataFrame, n_items: int) -> tuple[np.ndarray, float]:
    """Each item's mean training rating (the global mean where an item has none), and the global mean."""
    items, values = train["item"].to_numpy(np.int64), train["rating"].to_numpy(float)
    counts = np.bincount(items, minlength=n_items)
    sums = np.bincount(items, values, minlength=n_items)
    mean = float(values.mean()) if len(values) else 3.0
    return np.where(counts > 0, sums / np.maximum(counts, 1), mean), mean


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r, or None where either side is constant (a global mean, say) or there are fewer than two values."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) < 1e-9 or np.ptp(b) < 1e-9:  # a tolerance: a global mean differs in its last bits
        return None
    return float(np.corrcoef(a, b)[0, 1])


def rating_alignment(real: np.ndarray, expected: np.ndarray, drawn: np.ndarray, predictors: dict[str, np.ndarray],
                     train_ratings: np.ndarray, rng: np.random.Generator) -> dict:
    """RMSE/MAE of the simulated user's expected rating and of each point predictor, and its correlation with each
    predictor; W1 and histograms of the simulated draws, of each predictor rounded, and of draws from the training
    histogram."""
    contenders = {"simulated": expected, **predictors}
    errors = {name: {"rmse": rmse(pred, real), "mae": float(np.mean(np.abs(np.asarray(pred) - real)))} for name, pred in contenders.items()}
    train_draws = rng.choice(to_levels(train_ratings), size=len(real), replace=True)
    distributions = {"simulated": drawn, **{f"{name}_rounded": pred for name, pred in predictors.items()}, "training_histogram": train_draws}
    return {
        **errors,
        # Pearson correlation of the simulated expected rating with each predictor: near 1 means the simulated user
        # only restates that predictor (a tuned LLM that learnt the item mean from the item's text, say).
        "correlation_with": {name: _correlation(expected, pred) for name, pred in predictors.items()},
        "wasserstein": {name: wasserstein_levels(values, real) for name, values in distributions.items()},
        "histograms": {"real": histogram(real), **{name: histogram(values) for name, values in distributions.items()}},
        # Kept under their earlier names for readers of older results.
        "wasserstein_simulated_vs_real": wasserstein_levels(drawn, real),
        "wasserstein_train_vs_real": wasserstein_levels(train_ratings, real),
        "simulated_histogram": histogram(drawn),
        "real_histogram": histogram(real),
        "ratings": len(real),
    }
