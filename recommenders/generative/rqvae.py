"""RQ-VAE: item content vectors to semantic IDs (Rajput et al., 2023, "TIGER"; Lee et al., 2022).

An MLP encoder maps a content vector to a latent ``z``; ``levels`` codebooks
quantise it residually (level 0 quantises ``z``, level 1 what level 0 left, ...),
and an MLP decoder reconstructs the input from the sum of the chosen code
vectors. The loss is the reconstruction error plus, per level, the codebook
loss ``|sg(r) - e|^2`` and ``commitment * |r - sg(e)|^2``; gradients reach the
encoder through the straight-through estimator.

Two things keep the codebooks in use:

* **k-means initialisation**: on the first training batch every codebook is set
  to the k-means centroids of that level's residuals;
* **dead-code reset**: after each epoch but the last, a code no item chose in
  that epoch is moved onto a random residual of the last batch.

`semantic_ids` turns the codes into IDs of ``levels + 1`` codes: the last one
numbers the items that share all ``levels`` codes (0 for the first, 1, ...), so
every item has a distinct ID. `CodebookStats` reports codebook usage and the
collision rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm


class RQVAEConfig(BaseModel):
    """Shape and training of an RQ-VAE."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: int = Field(3, ge=1, le=8, description="residual codebooks (semantic ID length before the collision code)")
    codebook_size: int = Field(64, ge=2, le=4096, description="codes per codebook")
    latent_dim: int = Field(32, ge=1, description="dimension of the quantised latent")
    hidden: tuple[int, ...] = Field((256, 128), description="hidden widths of the encoder MLP (the decoder mirrors them)")
    epochs: int = Field(200, ge=1, description="passes over the catalog")
    batch_size: int = Field(256, ge=2, description="items per gradient step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    commitment: float = Field(0.25, ge=0, description="weight of the commitment loss (beta)")
    kmeans_iterations: int = Field(20, ge=1, description="Lloyd iterations of the k-means initialisation")


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` centroids of `points`: k-means++ seeding, then Lloyd's algorithm; an emptied cluster takes a random point."""
    n = len(points)
    centroids = points.new_empty(k, points.shape[1])
    centroids[0] = points[torch.randint(0, n, (1,), generator=generator)]
    nearest = ((points - centroids[0]) ** 2).sum(1)
    for j in range(1, k):  # each new seed drawn in proportion to its squared distance from the seeds so far
        weights = nearest if float(nearest.sum()) > 0 else torch.ones_like(nearest)
        centroids[j] = points[torch.multinomial(weights, 1, generator=generator)]
        nearest = torch.minimum(nearest, ((points - centroids[j]) ** 2).sum(1))
    for _ in range(iterations):
        assign = torch.cdist(points, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centroids[empty] = points[torch.randint(0, n, (int(empty.sum()),), generator=generator)]
    return centroids


class RQVAE(nn.Module):
    """Encoder, ``levels`` residual codebooks and decoder (see the module docstring)."""

    def __init__(self, input_dim: int, config: RQVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = _mlp([input_dim, *config.hidden, config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *reversed(config.hidden), input_dim])
        self.codebooks = nn.Parameter(torch.randn(config.levels, config.codebook_size, config.latent_dim) * 0.01)
        self.register_buffer("initialised", torch.tensor(False))

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Codes ``[n, levels]``, the quantised latent, the codebook + commitment loss and each level's residual."""
        residual, total = z, torch.zeros_like(z)
        codes, residuals = [], []
        loss = z.new_zeros(())
        for level in range(self.config.levels):
            book = self.codebooks[level]
            code = torch.cdist(residual.detach(), book.detach()).argmin(1)
            chosen = book[code]
            loss = loss + F.mse_loss(chosen, residual.detach()) + self.config.commitment * F.mse_loss(residual, chosen.detach())
            codes.append(code)
            residuals.append(residual.detach())
            total = total + chosen
            residual = residual - chosen.detach()
        quantised = z + (total - z).detach()  # straight-through: the decoder's gradient reaches the encoder
        return torch.stack(codes, 1), quantised, loss, residuals

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Reconstruction, codes, total loss and the residuals per level."""
        codes, quantised, q_loss, residuals = self.quantise(self.encoder(x))
        reconstruction = self.decoder(quantised)
        return reconstruction, codes, F.mse_loss(reconstruction, x) + q_loss, residuals

    @torch.no_grad()
    def initialise(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Set each codebook to the k-means centroids of its level's residuals on `x` (the first batch)."""
        residual = self.encoder(x)
        for level in range(self.config.levels):
            centroids = kmeans(residual, self.config.codebook_size, self.config.kmeans_iterations, generator)
            self.codebooks[level] = centroids
            residual = residual - centroids[torch.cdist(residual, centroids).argmin(1)]
        self.initialised.fill_(True)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``[n, levels]`` of `x` (no gradient)."""
        return self.quantise(self.encoder(x))[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantise(self.encoder(x))[1])


@dataclass(frozen=True)
class CodebookStats:
    """How well the codes cover the catalog.

    ``usage[l]`` is the share of level l's codes that at least one item uses;
    ``collision_rate`` is the share of items whose ``levels`` codes equal another
    item's (they are told apart by the extra code); ``max_collisions`` is the
    largest group of such items; ``reconstruction_mse`` is the decoder's error and
    ``mean_baseline_mse`` that of always predicting the mean vector (chance).
    """

    usage: list[float]
    unique_prefixes: list[int]
    collision_rate: float
    max_collisions: int
    reconstruction_mse: float
    mean_baseline_mse: float

    def as_dict(self) -> dict:
        return asdict(self)


def semantic_ids(codes: np.ndarray) -> np.ndarray:
    """``[n, levels + 1]``: the codes and a last code numbering items with equal codes (0, 1, ... by item id)."""
    codes = np.asarray(codes, dtype=np.int64)
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")  # within a group, by item id
    starts = np.searchsorted(group[order], group[order], side="left")
    rank = np.empty(len(codes), np.int64)
    rank[order] = np.arange(len(codes)) - starts
    return np.concatenate([codes, rank[:, None]], 1)


def codebook_stats(model: RQVAE, vectors: torch.Tensor, codes: np.ndarray) -> CodebookStats:
    """Usage, collisions and reconstruction quality of `model` on the catalog `vectors` coded as `codes`."""
    levels, size = model.config.levels, model.config.codebook_size
    usage = [len(np.unique(codes[:, level])) / size for level in range(levels)]
    unique_prefixes = [len(np.unique(codes[:, : level + 1], axis=0)) for level in range(levels)]
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    group_size = counts[inverse.reshape(-1)]
    with torch.no_grad():
        mse = float(F.mse_loss(model.reconstruct(vectors), vectors))
        baseline = float(((vectors - vectors.mean(0)) ** 2).mean())
    return CodebookStats(usage, unique_prefixes, float((group_size > 1).mean()), int(counts.max()), mse, baseline)


def standardise(vectors: np.ndarray) -> torch.Tensor:
    """Vectors minus their mean, over their global standard deviation."""
    x = torch.as_tensor(vectors, dtype=torch.float32)
    centred = x - x.mean(0)
    return centred / centred.std().clamp_min(1e-8)


def train_rqvae(vectors: np.ndarray, config: RQVAEConfig, seed: int = 0, progress: bool = True) -> tuple[RQVAE, np.ndarray, CodebookStats]:
    """Train an RQ-VAE on the catalog `vectors` (on CPU); return it, each item's codes and the stats.

    The vectors are standardised first (mean removed, divided by one global
    standard deviation): sentence vectors have tiny coordinates, and the losses
    would vanish beside the commitment term. Stats are on that scale, where
    predicting the mean scores 1.0.
    """
    x = standardise(np.asarray(vectors, dtype=np.float32))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RQVAE(x.shape[1], config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batch = min(config.batch_size, len(x))
    bar = tqdm(range(config.epochs), desc="RQ-VAE", disable=not progress, leave=False)
    for epoch in bar:
        used = torch.zeros(config.levels, config.codebook_size, dtype=torch.bool)
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch):
            rows = x[order[start : start + batch]]
            if not bool(model.initialised):
                model.initialise(rows, generator)
            _, codes, loss, residuals = model(rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            used[torch.arange(config.levels)[None, :].expand_as(codes), codes] = True
            total += float(loss.detach()) * len(rows)
        if epoch < config.epochs - 1:
            _reset_dead_codes(model, used, residuals, generator)
        bar.set_postfix(loss=f"{total / len(x):.5f}", used=f"{used.float().mean():.2f}")
    bar.close()
    model.eval()
    codes = model.encode(x).numpy()
    return model, codes, codebook_stats(model, x, codes)


@torch.no_grad()
def _reset_dead_codes(model: RQVAE, used: torch.Tensor, residuals: list[torch.Tensor], generator: torch.Generator) -> None:
    for level, residual in enumerate(residuals):
        dead = (~used[level]).nonzero().reshape(-1)
        if len(dead):
            picks = torch.randint(0, len(residual), (len(dead),), generator=generator)
            model.codebooks[level, dead] = residual[picks]
