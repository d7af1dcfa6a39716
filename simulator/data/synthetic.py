"""A synthetic dataset drawn from a known model, for scale tests and for checks that need the truth.

The ground truth (kept in ``dataset.extra["truth"]``):

* each item has 1-3 genres, a latent vector ``item_factors[i]`` near the mean of
  its genres' centroids, and a popularity ``item_popularity[i]`` (log-normal);
* each user has a latent taste ``user_factors[u]`` near the centroid of one or two
  favourite genres, and an activity (how many items they rate, log-normal);
* a user's items are drawn without replacement, with probability proportional to
  ``popularity * exp(affinity / temperature)`` where ``affinity = user . item``
  (Gumbel top-k over a popularity-sampled candidate pool, so nothing of size
  users x items is ever held);
* the rating is ``clip(round(3.5 + rating_scale * (affinity - rating_center) + noise), 1, 5)``,
  where ``rating_center`` is the median affinity of the drawn pairs.

Users are generated in chunks, so 1M users x 100k items needs memory in
proportion to the interactions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .dataset import Dataset, build_item_frame, build_user_frame

_GENRES = [
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
_WORDS = [
    "Night", "River", "Return", "Empire", "Secret", "Last", "City", "Storm", "Garden", "Shadow", "Winter",
    "Journey", "Silent", "Golden", "Lost", "Star", "Heart", "Stone", "Dream", "Fire", "Ocean", "Ghost",
]  # fmt: skip


@dataclass(frozen=True)
class SyntheticConfig:
    """How big the synthetic world is and how its users behave."""

    n_users: int = 1000
    """How many users."""
    n_items: int = 500
    """How many items."""
    mean_interactions: float = 30.0
    """Mean number of items a user rates (activity is log-normal around it)."""
    min_interactions: int = 5
    """No user rates fewer items than this (so leave-one-out splits have data)."""
    n_factors: int = 16
    """Dimension of the latent taste and item vectors."""
    n_genres: int = 12
    """How many genres items are drawn from (at most 16 named ones)."""
    temperature: float = 0.5
    """Lower makes choices follow taste more sharply, higher makes them closer to popularity."""
    popularity_sigma: float = 1.0
    """Spread of the log-normal item popularity; 0 makes all items equally popular."""
    rating_scale: float = 1.5
    """How strongly affinity moves the rating away from 3."""
    rating_noise: float = 0.7
    """Standard deviation of the noise added to ratings."""
    candidate_factor: int = 8
    """Candidates drawn per chosen item; more is closer to exact sampling, and slower."""
    chunk_users: int = 20_000
    """Users generated at once; bounds memory."""
    seed: int = 0
    """Everything is a function of this seed."""


@dataclass(frozen=True)
class SyntheticTruth:
    """The model the synthetic interactions were drawn from."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    item_popularity: np.ndarray
    item_genres: list[list[int]] = field(repr=False)
    rating_center: float
    config: SyntheticConfig

    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """True affinity of each (user, item) pair."""
        return np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items])


def generate_synthetic(config: SyntheticConfig = SyntheticConfig()) -> Dataset:
    """Draw a dataset from the model in this module's docstring."""
    if config.n_genres > len(_GENRES) or config.n_genres < 2:
        raise ValueError(f"n_genres must be between 2 and {len(_GENRES)}, got {config.n_genres}")
    if config.min_interactions > config.n_items:
        raise ValueError(f"min_interactions ({config.min_interactions}) exceeds n_items ({config.n_items})")
    rng = np.random.default_rng(config.seed)
    k = config.n_factors
    centroids = rng.normal(0.0, 1.0, (config.n_genres, k)) / np.sqrt(k)

    # Items: a primary genre, up to two more, and a vector near their centroids' mean.
    n_genres_per_item = rng.integers(1, 4, config.n_items)
    item_genres = [sorted(set(rng.choice(config.n_genres, size=n, replace=False).tolist())) for n in n_genres_per_item]
    item_factors = np.stack([centroids[g].mean(axis=0) for g in item_genres]) * 2.0
    item_factors += rng.normal(0.0, 0.5 / np.sqrt(k), item_factors.shape)
    popularity = rng.lognormal(0.0, config.popularity_sigma, config.n_items)
    pop_cdf = np.cumsum(popularity / popularity.sum())

    # Users: one or two favourite genres.
    favourite = rng.integers(0, config.n_genres, (config.n_users, 2))
    second_weight = rng.uniform(0.0, 1.0, (config.n_users, 1))
    user_factors = (centroids[favourite[:, 0]] + second_weight * centroids[favourite[:, 1]]) * 2.0
    user_factors += rng.normal(0.0, 0.5 / np.sqrt(k), user_factors.shape)
    activity = rng.lognormal(np.log(config.mean_interactions) - 0.5, 1.0, config.n_users)
    counts = np.clip(np.round(activity), config.min_interactions, config.n_items).astype(np.int64)

    parts = [
        _draw_chunk(rng, config, start, min(start + config.chunk_users, config.n_users), counts, user_factors, item_factors, popularity, pop_cdf)
        for start in range(0, config.n_users, config.chunk_users)
    ]
    users_col = np.concatenate([p[0] for p in parts])
    items_col = np.concatenate([p[1] for p in parts])
    affinity = np.einsum("ij,ij->i", user_factors[users_col], item_factors[items_col])
    noise = rng.normal(0.0, config.rating_noise, len(users_col))
    # Centred on the median chosen affinity so ratings spread over the scale as real ones do.
    rating_center = float(np.median(affinity)) if len(affinity) else 0.0
    ratings = np.clip(np.round(3.5 + config.rating_scale * (affinity - rating_center) + noise), 1, 5).astype(np.float32)
    # Each user is active over a random stretch of a year; their choices come in order.
    start_time = 1_600_000_000 + rng.integers(0, 365 * 86400, config.n_users)
    position = np.arange(len(users_col)) - np.searchsorted(users_col, users_col, side="left")
    timestamps = start_time[users_col] + position * 3600 + rng.integers(0, 3600, len(users_col))

    genre_names = _GENRES[: config.n_genres]
    titles = [f"{_WORDS[i % len(_WORDS)]} {_WORDS[(i // len(_WORDS)) % len(_WORDS)]} {i}" for i in range(config.n_items)]
    items = pd.DataFrame(
        {
            "raw_id": [f"i{i}" for i in range(config.n_items)],
            "title": titles,
            "year": 1950 + rng.integers(0, 70, config.n_items),
            "genres": [[genre_names[g] for g in gs] for gs in item_genres],
        }
    )
    users = pd.DataFrame({"raw_id": [f"u{u}" for u in range(config.n_users)], "age": rng.integers(18, 70, config.n_users)})
    interactions = pd.DataFrame(
        {"user": users_col.astype(np.int32), "item": items_col.astype(np.int32), "rating": ratings, "timestamp": timestamps}
    ).sort_values("timestamp", kind="stable", ignore_index=True)
    dataset = Dataset(
        name=f"synthetic-{config.n_users}x{config.n_items}-s{config.seed}",
        interactions=interactions,
        items=build_item_frame(items, "synthetic items"),
        users=build_user_frame(users, pd.Series([], dtype=str), "synthetic users"),
    )
    dataset.extra["truth"] = SyntheticTruth(user_factors, item_factors, popularity, item_genres, rating_center, config)
    return dataset


def _draw_chunk(rng, config, start, stop, counts, user_factors, item_factors, popularity, pop_cdf):
    """Items for users start..stop-1: Gumbel top-k of taste over a popularity-drawn pool."""
    users = np.arange(start, stop)
    need = counts[users]
    pool_sizes = np.minimum(need * config.candidate_factor, config.n_items)
    pool_user = np.repeat(users, pool_sizes)
    pool_item = np.searchsorted(pop_cdf, rng.random(len(pool_user)), side="right").clip(0, config.n_items - 1)
    # Popularity already shaped the pool, so only taste enters the key.
    affinity = np.einsum("ij,ij->i", user_factors[pool_user], item_factors[pool_item])
    key = affinity / config.temperature + rng.gumbel(size=len(pool_user))
    # Drop repeated (user, item) pairs, keeping the best key, then take each user's top `need`.
    order = np.lexsort((-key, pool_item, pool_user))
    pool_user, pool_item, key = pool_user[order], pool_item[order], key[order]
    first = np.ones(len(pool_user), bool)
    first[1:] = (pool_user[1:] != pool_user[:-1]) | (pool_item[1:] != pool_item[:-1])
    pool_user, pool_item, key = pool_user[first], pool_item[first], key[first]
    order = np.lexsort((-key, pool_user))
    pool_user, pool_item = pool_user[order], pool_item[order]
    rank = np.arange(len(pool_user)) - np.searchsorted(pool_user, pool_user, side="left")
    chosen = rank < need[pool_user - start]
    chosen_user, chosen_item = pool_user[chosen], pool_item[chosen]
    # A user whose pool had too few distinct items is topped up uniformly from the rest.
    have = np.bincount(chosen_user - start, minlength=len(users))
    short = np.flatnonzero(have < need)
    extra_users, extra_items = [], []
    for s in short:
        taken = set(chosen_item[chosen_user == users[s]].tolist())
        rest = np.array([i for i in range(config.n_items) if i not in taken])
        pick = rng.choice(rest, size=min(need[s] - have[s], len(rest)), replace=False)
        extra_users.append(np.full(len(pick), users[s]))
        extra_items.append(pick)
    users_out = np.concatenate([chosen_user, *extra_users])
    items_out = np.concatenate([chosen_item, *extra_items])
    order = np.argsort(users_out, kind="stable")
    return users_out[order], items_out[order]
