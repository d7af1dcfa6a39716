"""The RQ-VAE turns content vectors into semantic IDs: it reconstructs far better than chance, uses most of
its codes, and the collision code makes every ID unique."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recarena.recommenders.base import torch_threads
from recarena.recommenders.generative.rqvae import RQVAE, RQVAEConfig, _reset_dead_codes, kmeans, semantic_ids, train_rqvae

CONFIG = RQVAEConfig(levels=3, codebook_size=16, latent_dim=8, hidden=(64,), epochs=40, batch_size=128)


@pytest.fixture(scope="module")
def catalog() -> np.ndarray:
    """400 unit vectors in 48 dimensions around 24 topics (a content catalog with structure)."""
    rng = np.random.default_rng(0)
    topics = rng.normal(size=(24, 48))
    vectors = topics[rng.integers(0, 24, 400)] + 0.35 * rng.normal(size=(400, 48))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(catalog):
    with torch_threads(1):
        return train_rqvae(catalog, CONFIG, seed=0, progress=False)


def test_reconstructs_far_better_than_chance(trained):
    _, _, stats = trained
    # Chance: predicting the mean vector for every item (1.0 on the standardised scale).
    assert stats.mean_baseline_mse == pytest.approx(1.0, rel=0.05)
    assert stats.reconstruction_mse < 0.6 * stats.mean_baseline_mse


def test_uses_most_codes_at_every_level(trained):
    _, codes, stats = trained
    assert codes.shape == (400, 3) and codes.min() >= 0 and codes.max() < 16
    assert min(stats.usage) >= 0.75, stats.usage
    # Each level splits the catalog further.
    assert stats.unique_prefixes[0] < stats.unique_prefixes[1] < stats.unique_prefixes[2]
    _, counts = np.unique(codes, axis=0, return_counts=True)
    assert stats.collision_rate == pytest.approx(counts[counts > 1].sum() / len(codes))
    assert stats.max_collisions == counts.max()


def test_codes_follow_content(trained, catalog):
    """Items with the same first code are closer in content than items with different ones."""
    _, codes, _ = trained
    similarity = catalog @ catalog.T
    same = codes[:, :1] == codes[:, 0][None, :]
    np.fill_diagonal(same, False)
    assert similarity[same].mean() > similarity[~same].mean() + 0.2


def test_training_is_reproducible(catalog, trained):
    with torch_threads(1):
        again = train_rqvae(catalog, CONFIG, seed=0, progress=False)[1]
    assert np.array_equal(again, trained[1])


def test_semantic_ids_number_collisions():
    codes = np.array([[1, 2, 3], [0, 0, 0], [1, 2, 3], [1, 2, 3], [0, 0, 1]])
    ids = semantic_ids(codes)
    assert ids[:, :3].tolist() == codes.tolist()
    assert ids[:, 3].tolist() == [0, 0, 1, 2, 0]
    assert len(np.unique(ids, axis=0)) == len(ids)


def test_codebooks_start_at_kmeans_centroids_of_the_first_batch():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    points = centres.repeat(25, 1) + 0.1 * torch.randn(100, 2, generator=generator)
    found = kmeans(points, 4, 20, generator)
    # Every true centre has a centroid next to it.
    assert torch.cdist(centres, found).min(1).values.max() < 0.3
    model = RQVAE(2, RQVAEConfig(levels=2, codebook_size=4, latent_dim=2, hidden=(8,)))
    model.initialise(points, generator)
    assert bool(model.initialised)
    latent = model.encoder(points).detach()
    assert torch.cdist(latent, model.codebooks[0].detach()).min(1).values.mean() < latent.std()


def test_dead_codes_move_onto_residuals():
    model = RQVAE(4, RQVAEConfig(levels=2, codebook_size=4, latent_dim=3, hidden=(8,)))
    residuals = [torch.randn(10, 3), torch.randn(10, 3)]
    used = torch.tensor([[True, False, True, False], [True, True, True, True]])
    before = model.codebooks.detach().clone()
    _reset_dead_codes(model, used, residuals, torch.Generator().manual_seed(0))
    after = model.codebooks.detach()
    assert torch.equal(after[0, [0, 2]], before[0, [0, 2]]) and torch.equal(after[1], before[1])
    for dead in (1, 3):  # each dead code now sits on one of the level's residuals
        assert torch.cdist(after[0, dead][None], residuals[0]).min() < 1e-6
