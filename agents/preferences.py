"""The preference model: what a simulated user truly likes, fitted on real histories.

Two heads over shared-shape factors (the simulator knows this truth, as RecSim's
users do; the recommender under test never sees it):

* **watch**: ``logit P(u interacts with i) = b_w + bu_w[u] + bi_w[i] + <p_u, q_i>``,
  fitted by logistic regression of the full user x item interaction matrix (every
  item the user never had is a negative, no sampling), so the probabilities are
  calibrated: a random item gets about the user's real density.
* **rating**: an ordinal (cumulative-logit) model,
  ``P(r <= k) = sigmoid(theta_k - eta)`` with ``eta = bu_r[u] + bi_r[i] + <x_u, y_i>``
  and ordered thresholds theta_1 < ... < theta_4, fitted by maximum likelihood on
  the real ratings.

Item factors are a free vector plus the mean of the item's genre vectors, so taste
generalises across a genre even for items a user never rated. Fitting is full-batch
AdamW on dense user-batch x item score blocks (no gathers over sampled pairs,
which are slow on the CPU), seeded and deterministic. Scoring is
plain numpy on the stored arrays, vectorised over (user, item) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from recarena.simulator.data import Dataset

N_LEVELS = 5  # ratings 1..5; other scales are rounded and clipped onto it


@dataclass(frozen=True)
class PreferenceConfig:
    """How the preference model is fitted."""

    n_factors: int = 16
    """Dimension of user and item factors.

    The defaults (16 factors, 100 epochs, learning rate 0.05, L2 1 and 4) were chosen on a
    random 10% holdout of ml-100k: watch AUC 0.87 against random items, rating RMSE 0.91
    (item-mean baseline 1.02, global mean 1.12)."""
    epochs: int = 100
    """Full-batch Adam steps."""
    learning_rate: float = 0.05
    """Adam's step size."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay on every parameter."""
    watch_l2: float = 1.0
    """L2 penalty on the watch head's factors and biases (against the summed log-likelihood)."""
    rating_l2: float = 4.0
    """L2 penalty on the rating head's factors and biases (against the summed log-likelihood)."""
    seed: int = 0
    """Seed for the initialisation and the negative samples."""
    progress: bool = False
    """Show a progress bar while fitting."""


@dataclass
class PreferenceModel:
    """Fitted arrays; see the module docstring for the formulas."""

    watch_bias: float
    watch_user_bias: np.ndarray
    watch_item_bias: np.ndarray
    watch_user_factors: np.ndarray
    watch_item_factors: np.ndarray
    rating_user_bias: np.ndarray
    rating_item_bias: np.ndarray
    rating_user_factors: np.ndarray
    rating_item_factors: np.ndarray
    thresholds: np.ndarray
    """theta_1..theta_4 of the ordinal model, increasing."""
    seen: list[set[int]]
    """Each user's real items in the fitting data (they are never watched again)."""

    # ------------------------------------------------------------------ scoring
    def watch_logits(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Watch logit for each (user, item); `items` may be ``[n]`` (one per user) or ``[n, slate]``."""
        users = np.asarray(users)
        items = np.asarray(items)
        u = users if items.ndim == 1 else users[:, None]
        dot = np.einsum("...k,...k->...", self.watch_user_factors[u], self.watch_item_factors[items])
        return self.watch_bias + self.watch_user_bias[u] + self.watch_item_bias[items] + dot

    def rating_location(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """eta for each (user, item), same shapes as `watch_logits`."""
        users = np.asarray(users)
        items = np.asarray(items)
        u = users if items.ndim == 1 else users[:, None]
        dot = np.einsum("...k,...k->...", self.rating_user_factors[u], self.rating_item_factors[items])
        return self.rating_user_bias[u] + self.rating_item_bias[items] + dot

    def rating_probabilities(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(rating = 1..5) for each pair: shape ``items.shape + (5,)``."""
        return ordinal_probabilities(self.rating_location(users, items), self.thresholds)

    def expected_rating(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.rating_probabilities(users, items) @ np.arange(1, N_LEVELS + 1)


def ordinal_probabilities(location: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """P(level = 1..5) under a cumulative-logit model."""
    cumulative = 1.0 / (1.0 + np.exp(-(thresholds - location[..., None])))
    lower = np.concatenate([np.zeros(location.shape + (1,)), cumulative], axis=-1)
    upper = np.concatenate([cumulative, np.ones(location.shape + (1,))], axis=-1)
    return np.clip(upper - lower, 1e-12, 1.0)


class _Factors(torch.nn.Module):
    """Biases and factors of one head; item factors are a free part plus their genres' mean."""

    def __init__(self, n_users: int, n_items: int, genre_matrix: torch.Tensor, k: int):
        super().__init__()
        self.user = torch.nn.Parameter(torch.randn(n_users, k) * 0.05)
        self.item = torch.nn.Parameter(torch.randn(n_items, k) * 0.05)
        self.genre = torch.nn.Parameter(torch.randn(genre_matrix.shape[1], k) * 0.05)
        self.user_bias = torch.nn.Parameter(torch.zeros(n_users))
        self.item_bias = torch.nn.Parameter(torch.zeros(n_items))
        self.bias = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("genre_matrix", genre_matrix)

    def item_factors(self) -> torch.Tensor:
        return self.item + self.genre_matrix @ self.genre

    def penalty(self, users: torch.Tensor, share: float) -> torch.Tensor:
        """Sum of squares of the batch's user parameters and `share` of the item-side ones."""
        user_part = self.user[users].pow(2).sum() + self.user_bias[users].pow(2).sum()
        item_part = self.item.pow(2).sum() + self.genre.pow(2).sum() + self.item_bias.pow(2).sum()
        return user_part + share * item_part

    def dense(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of `users` against every item: ``[len(users), n_items]``."""
        return self.bias + self.user_bias[users, None] + self.item_bias[None, :] + self.user[users] @ self.item_factors().T


def _user_batches(n_users: int, n_items: int) -> list[torch.Tensor]:
    per_batch = max(1, (1 << 23) // max(1, n_items))  # about 8M scores at once
    return [torch.arange(s, min(s + per_batch, n_users)) for s in range(0, n_users, per_batch)]


def seen_items(dataset: Dataset) -> list[set[int]]:
    """Each user's items in `dataset` (`PreferenceModel.seen`)."""
    seen: list[set[int]] = [set() for _ in range(dataset.n_users)]
    frame = dataset.interactions
    for u, i in zip(frame["user"].to_numpy().tolist(), frame["item"].to_numpy().tolist()):
        seen[u].add(i)
    return seen


def fit_preferences(dataset: Dataset, config: PreferenceConfig = PreferenceConfig()) -> PreferenceModel:
    """Fit both heads on `dataset`'s interactions (see the module docstring)."""
    frame = dataset.interactions
    if len(frame) == 0:
        raise ValueError(f"{dataset.name}: no interactions to fit a preference model on")
    torch.manual_seed(config.seed)
    users = frame["user"].to_numpy().astype(np.int64)
    items = frame["item"].to_numpy().astype(np.int64)
    ratings = np.clip(np.round(frame["rating"].to_numpy()), 1, N_LEVELS).astype(np.int64)
    n_users, n_items = dataset.n_users, dataset.n_items
    genre_matrix = torch.tensor(dataset.genre_matrix(), dtype=torch.float32)  # the genre mass, in the model's precision
    seen = seen_items(dataset)

    watch = _Factors(n_users, n_items, genre_matrix, config.n_factors)
    rating = _Factors(n_users, n_items, genre_matrix, config.n_factors)
    raw_thresholds = torch.nn.Parameter(torch.tensor([-1.5, 0.0, 0.0, 0.0]))
    optimiser = torch.optim.AdamW(
        [*watch.parameters(), *rating.parameters(), raw_thresholds], lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def thresholds() -> torch.Tensor:
        # The first threshold is free, the rest add positive steps: always ordered.
        steps = torch.nn.functional.softplus(raw_thresholds[1:]) + 0.05
        return torch.cat([raw_thresholds[:1], raw_thresholds[:1] + torch.cumsum(steps, 0)])

    batches = _user_batches(n_users, n_items)
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    for _ in tqdm(range(config.epochs), desc="preference model", disable=not config.progress):
        for batch in batches:
            lo, hi = int(batch[0]), int(batch[-1]) + 1
            rows = order[bounds[lo] : bounds[hi]]
            local_users = torch.as_tensor(users[rows] - lo)
            batch_items = torch.as_tensor(items[rows])
            levels = torch.as_tensor(ratings[rows] - 1)
            optimiser.zero_grad()
            # Watch: every item the user did not interact with is a negative, so probabilities come out calibrated.
            target = torch.zeros(len(batch), n_items)
            target[local_users, batch_items] = 1.0
            watch_loss = torch.nn.functional.binary_cross_entropy_with_logits(watch.dense(batch), target, reduction="sum")
            eta = rating.dense(batch)[local_users, batch_items]
            cumulative = torch.sigmoid(thresholds()[None, :] - eta[:, None])
            padded = torch.cat([torch.zeros(len(eta), 1), cumulative, torch.ones(len(eta), 1)], 1)
            picked = torch.arange(len(eta))
            probability = padded[picked, levels + 1] - padded[picked, levels]
            rating_loss = -torch.log(probability.clamp_min(1e-9)).sum()
            # The penalty is split over the user batches, so one epoch applies it once.
            share = len(batch) / n_users
            penalty = config.watch_l2 * watch.penalty(batch, share) + config.rating_l2 * rating.penalty(batch, share)
            ((watch_loss + rating_loss + penalty) / len(frame)).backward()
            optimiser.step()

    with torch.no_grad():
        return PreferenceModel(
            watch_bias=float(watch.bias),
            watch_user_bias=watch.user_bias.numpy().copy(),
            watch_item_bias=watch.item_bias.numpy().copy(),
            watch_user_factors=watch.user.numpy().copy(),
            watch_item_factors=watch.item_factors().numpy().copy(),
            rating_user_bias=rating.user_bias.numpy().copy() + float(rating.bias),
            rating_item_bias=rating.item_bias.numpy().copy(),
            rating_user_factors=rating.user.numpy().copy(),
            rating_item_factors=rating.item_factors().numpy().copy(),
            thresholds=thresholds().numpy().copy(),
            seen=seen,
        )
