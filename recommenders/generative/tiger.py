"""TIGER: generative retrieval with semantic IDs (Rajput et al., NeurIPS 2023).

1. **Content**: every catalog item's text (title, year, genres) becomes an
   all-MiniLM-L6-v2 vector (`item_text.content_vectors`, cached on disk).
2. **Semantic IDs**: an RQ-VAE (`rqvae.py`) quantises each vector into
   ``levels`` codes; a last code tells apart items with equal codes. IDs come
   from content alone, so an item with no interactions gets one too.
3. **Model**: an encoder-decoder transformer (`seq2seq.py`) reads the user's
   last ``max_len`` items as ID tokens and is trained to generate the next
   item's ID, one code at a time (cross-entropy per level). By default each
   history item is one encoder position (the sum of its code embeddings), which
   is ``levels + 1`` times cheaper than the paper's one position per code
   (``encoder_tokens="code"``).
4. **Retrieval**: beam search constrained by a prefix trie of the valid IDs
   (`trie.py`), so every beam is a real item, cold ones included.

`score` must rank every item. Here the items the search reached at full depth
(the final beams and their siblings) get their exact sequence
log-probability; every other item gets the log-probability of its deepest
prefix the search expanded, minus 1000 per level it is short of (see
`trie.tiered_item_scores`). So the top ``beam_size`` of `score` are exactly the
beams, best first, the rest follow in the model's own coarse order, and every
score is finite. `recommend` is the top-k of `score`: the top-k beams, after
the excluded items are removed.

`update` keeps the IDs (they depend on content only) and trains the transformer
``update_epochs`` more epochs on all histories. On CUDA the transformer runs
under bf16 autocast; ``compile=true`` wraps its training forward in
`torch.compile`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from recarena.simulator.data import Dataset

from ..base import Recommender
from ..errors import RecommenderError
from ..params import TrainedParams
from ..training import train
from .item_text import content_vectors
from .rqvae import RQVAEConfig, semantic_ids, train_rqvae
from .seq2seq import TigerTransformer
from .trie import SemanticIdTrie, constrained_beam_search, tiered_item_scores


class TigerParams(TrainedParams):
    """TIGER's parameters: the RQ-VAE, the transformer and the beam search."""

    epochs: int = Field(40, ge=1, description="most training epochs of the transformer")
    patience: int = Field(4, ge=1, description="stop after this many validations without a better NDCG@10")
    batch_size: int = Field(256, ge=1, description="training examples (history, next item) per gradient step")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate of the transformer")
    dim: int = Field(64, ge=8, description="transformer width")
    heads: int = Field(2, ge=1, description="attention heads (must divide dim)")
    layers: int = Field(2, ge=1, le=12, description="encoder layers, and as many decoder layers")
    inner_dim: int = Field(128, ge=1, description="feed-forward width of each layer")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the transformer")
    max_len: int = Field(20, ge=1, description="most recent items the encoder reads")
    encoder_tokens: Literal["item", "code"] = Field(
        "item", description="encoder positions: one per item (its code embeddings summed; levels+1 x shorter) or one per code, as in the paper"
    )
    beam_size: int = Field(
        20, ge=1, description="beams kept at each decoding step; past the beams, recommend() falls back to the coarser prefix scores"
    )
    score_batch: int = Field(128, ge=1, description="users decoded at once in score()")
    levels: int = Field(3, ge=1, le=8, description="RQ-VAE codebooks: semantic ID length before the collision code")
    codebook_size: int = Field(64, ge=2, le=4096, description="codes per RQ-VAE codebook")
    latent_dim: int = Field(32, ge=1, description="RQ-VAE latent dimension")
    rqvae_hidden: tuple[int, ...] = Field((256, 128), description="RQ-VAE encoder hidden widths (the decoder mirrors them)")
    rqvae_epochs: int = Field(200, ge=1, description="RQ-VAE passes over the catalog")
    rqvae_batch_size: int = Field(256, ge=2, description="RQ-VAE items per step (the first batch seeds the k-means codebooks)")
    rqvae_lr: float = Field(1e-3, gt=0, description="RQ-VAE Adam learning rate")
    commitment: float = Field(0.25, ge=0, description="RQ-VAE commitment loss weight (beta)")
    embedding_cache: bool = Field(True, description="cache the item text embeddings under $RECARENA_HOME/embeddings")
    compile: bool = Field(False, description="torch.compile the transformer for training (needs a C++ compiler; pays off on GPU)")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "TigerParams":
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        return self

    def rqvae_config(self) -> RQVAEConfig:
        return RQVAEConfig(
            levels=self.levels, codebook_size=self.codebook_size, latent_dim=self.latent_dim, hidden=self.rqvae_hidden,
            epochs=self.rqvae_epochs, batch_size=self.rqvae_batch_size, lr=self.rqvae_lr, commitment=self.commitment,
        )  # fmt: skip


def training_pairs(histories: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (previous ``max_len`` items + 1, left-padded with 0; next item) pair of every user's sequence."""
    inputs, targets = [], []
    for seq in histories:
        if len(seq) < 2:
            continue
        padded = np.concatenate([np.zeros(max_len, np.int64), np.asarray(seq, np.int64) + 1])
        windows = np.lib.stride_tricks.sliding_window_view(padded, max_len)[1 : len(seq)]  # window t ends before item t
        inputs.append(windows)
        targets.append(np.asarray(seq[1:], np.int64))
    if not inputs:
        return np.zeros((0, max_len), np.int64), np.zeros(0, np.int64)
    return np.concatenate(inputs), np.concatenate(targets)


class Tiger(Recommender):
    """Generative retrieval over semantic IDs (see the module docstring)."""

    name = "tiger"
    Params = TigerParams
    update_mode = "incremental"

    def __init__(self, params: TigerParams | None = None, **overrides: Any):
        super().__init__(params, **overrides)
        self.module: TigerTransformer | None = None
        self.semantic_ids: np.ndarray | None = None
        self.trie: SemanticIdTrie | None = None
        self.codebook_stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ fit / update
    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        if len(dataset.items) != dataset.n_items:
            raise RecommenderError(f"tiger: the dataset's items table has {len(dataset.items)} rows for {dataset.n_items} items")
        p = self.params
        vectors = content_vectors(dataset.items, cache=p.embedding_cache, progress=p.progress)
        _, codes, stats = train_rqvae(vectors, p.rqvae_config(), seed=p.seed, progress=p.progress)
        self.codebook_stats = stats.as_dict()
        self._build(semantic_ids(codes))
        self._train(valid, p.epochs, p.patience)

    def _update(self, new: pd.DataFrame) -> None:
        if self.params.update_epochs:
            self._train(None, self.params.update_epochs, self.params.update_epochs)

    def _build(self, ids: np.ndarray) -> None:
        p = self.params
        self.semantic_ids = ids
        sizes = [p.codebook_size] * p.levels + [int(ids[:, -1].max()) + 1]
        self.trie = SemanticIdTrie(ids, sizes).to(self.device)
        self.module = TigerTransformer(ids, sizes, p.dim, p.heads, p.layers, p.inner_dim, p.dropout, p.max_len, p.encoder_tokens == "item").to(self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train(self, valid: pd.DataFrame | None, epochs: int, patience: int) -> None:
        p = self.params
        inputs, targets = training_pairs(self.histories, p.max_len)
        rng = np.random.default_rng([p.seed, len(self.interactions)])
        optimizer = torch.optim.AdamW(self.module.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        loss_of = torch.compile(self.module.loss) if p.compile else self.module.loss
        ids = torch.as_tensor(self.semantic_ids, device=self.device)

        def run_epoch(epoch: int) -> float:
            order = rng.permutation(len(inputs))
            total, batches = 0.0, 0
            for start in range(0, len(order), p.batch_size):
                rows = order[start : start + p.batch_size]
                history = torch.as_tensor(inputs[rows], device=self.device)
                wanted = ids[torch.as_tensor(targets[rows], device=self.device)]
                with self._autocast():
                    loss = loss_of(history, wanted)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, batches = total + float(loss.detach()), batches + 1
            return total / max(1, batches)

        log = train(self, self.module, run_epoch, valid, epochs, patience, p.eval_every, p.progress)
        self.training_log = log.as_dict()

    # ------------------------------------------------------------------ retrieval
    def _histories_tensor(self, history: list[np.ndarray]) -> torch.Tensor:
        length = self.params.max_len
        batch = np.zeros((len(history), length), np.int64)
        for row, seq in enumerate(history):
            recent = np.asarray(seq[-length:], np.int64) + 1
            if len(recent):
                batch[row, length - len(recent) :] = recent
        return torch.as_tensor(batch, device=self.device)

    def beam_search(self, history: list[np.ndarray], beam_size: int | None = None):
        """Constrained beam search for users with these histories: a `trie.BeamResult`."""
        module, trie = self.module, self.trie
        module.eval()
        with torch.no_grad(), self._autocast():
            memory, padding = module.encode(self._histories_tensor(history))

            def step(depth: int, codes: torch.Tensor) -> torch.Tensor:
                hidden = module.decode_beams(codes, memory, padding)
                logits = module.level_logits(hidden, depth).float()
                return torch.log_softmax(logits, -1)

            return constrained_beam_search(step, trie, len(history), beam_size or self.params.beam_size, self.device)

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        parts = []
        for start in range(0, len(users), self.params.score_batch):
            result = self.beam_search(history[start : start + self.params.score_batch])
            parts.append(tiered_item_scores(result, self.trie).cpu())
        return torch.cat(parts)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {
            "module": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "semantic_ids": torch.as_tensor(self.semantic_ids),
            "codebook_stats": self.codebook_stats,
            "log": self.training_log,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self._build(state["semantic_ids"].numpy())
        self.module.load_state_dict(state["module"])
        self.module.eval()
        self.codebook_stats = state.get("codebook_stats", {})
        self.training_log = state.get("log", {})
