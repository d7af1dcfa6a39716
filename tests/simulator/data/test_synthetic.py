"""The synthetic generator: reproducible, shaped by its ground truth, and light at scale."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd

from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic


def test_same_seed_same_data_other_seed_other_data():
    config = SyntheticConfig(n_users=200, n_items=80, seed=5)
    pd.testing.assert_frame_equal(generate_synthetic(config).interactions, generate_synthetic(config).interactions)
    other = generate_synthetic(SyntheticConfig(n_users=200, n_items=80, seed=6))
    assert not other.interactions.equals(generate_synthetic(config).interactions)


def test_shape_and_validity(small_synthetic):
    data = small_synthetic
    frame = data.interactions
    assert (data.n_users, data.n_items) == (300, 120)
    assert not frame.duplicated(["user", "item"]).any()
    assert frame.groupby("user").size().min() >= 5
    assert set(frame["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert frame["timestamp"].is_monotonic_increasing
    assert all(1 <= len(g) <= 3 for g in data.items["genres"])
    assert data.items["text"].str.contains("genres:").all()


def test_choices_and_ratings_follow_the_true_affinity(small_synthetic):
    truth = small_synthetic.extra["truth"]
    frame = small_synthetic.interactions
    chosen = truth.affinity(frame["user"].to_numpy(), frame["item"].to_numpy())
    rng = np.random.default_rng(0)
    random_pairs = truth.affinity(rng.integers(0, 300, 5000), rng.integers(0, 120, 5000))
    assert chosen.mean() > random_pairs.mean() + 0.3 * random_pairs.std()
    assert np.corrcoef(chosen, frame["rating"].to_numpy())[0, 1] > 0.6


def test_large_catalogs_need_memory_for_interactions_only():
    config = SyntheticConfig(n_users=20_000, n_items=100_000, mean_interactions=5, chunk_users=5_000, seed=1)
    tracemalloc.start()
    data = generate_synthetic(config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bytes = config.n_users * config.n_items * 4
    assert data.n_interactions >= 5 * config.n_users
    assert peak < dense_bytes / 20, f"peak {peak / 1e6:.0f} MB"
