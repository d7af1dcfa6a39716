"""Top-k by inner product through faiss: exact by default, IVF or HNSW for very large catalogs.

`ItemIndex` holds the item vectors of an embedding model; `search` answers a
batch of user vectors with the top k ids, over-fetching by the longest
exclusion list so that excluded items can be dropped and k remain (exact
search guarantees it; approximate search pads any shortfall with -1).
`retrieval_recall` measures an approximate index against the exact one.
"""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np

from .base import Recommendations, _pad

IndexKind = Literal["exact", "ivf", "hnsw"]
_PARALLEL_QUERIES = 32  # fewer queries than this are searched on one thread


class ItemIndex:
    """A faiss inner-product index over item vectors (ids = row numbers)."""

    def __init__(
        self,
        item_vectors: np.ndarray,
        kind: IndexKind = "exact",
        ivf_lists: int = 0,
        ivf_probe: int = 16,
        hnsw_neighbours: int = 32,
        hnsw_ef_search: int = 128,
        seed: int = 0,
    ):
        vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.n_items, dim = vectors.shape
        self.kind = kind
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            # sqrt(n) cells, and at least 39 training points per cell as faiss's k-means asks.
            lists = ivf_lists or max(1, min(int(np.sqrt(self.n_items)), self.n_items // 39))
            lists = min(lists, self.n_items)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(vectors)
            index.nprobe = min(ivf_probe, lists)
            self._quantizer = quantizer  # faiss does not own it; keep it alive
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = hnsw_ef_search
        else:
            raise ValueError(f"unknown index kind {kind!r}; choose one of: exact, ivf, hnsw")
        index.add(vectors)
        self.index = index

    def search(self, queries: np.ndarray, k: int, banned: list[np.ndarray] | None = None) -> Recommendations:
        """Top `k` ids and inner products per query, dropping each row's `banned` ids."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        extra = max((len(b) for b in banned), default=0) if banned is not None else 0
        fetch = min(self.n_items, k + extra)
        scores, ids = self._search(queries, fetch)
        ids = ids.astype(np.int64)
        if banned is not None:
            drop = np.zeros(ids.shape, dtype=bool)
            for row, items in enumerate(banned):
                if len(items):
                    drop[row] = np.isin(ids[row], items)
            ids = np.where(drop, -1, ids)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        # Move the dropped slots to the end of each row, keeping the order of the rest.
        order = np.argsort(ids < 0, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, 1)[:, :k]
        scores = np.take_along_axis(scores, order, 1)[:, :k]
        return _pad(ids, scores, k)


    def _search(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        if len(queries) >= _PARALLEL_QUERIES:
            return self.index.search(queries, fetch)
        # A page request is a handful of queries: OpenMP's start-up costs more than it saves
        # (5x slower for one query on a busy 2-core machine), so search on one thread.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(queries, fetch)
        finally:
            faiss.omp_set_num_threads(threads)


def retrieval_recall(item_vectors: np.ndarray, queries: np.ndarray, k: int, index: ItemIndex) -> float:
    """Share of the exact top-k that `index` returns (1.0 for an exact index)."""
    exact = ItemIndex(item_vectors, "exact").search(queries, k).items
    approx = index.search(queries, k).items
    hits = sum(len(np.intersect1d(e[e >= 0], a[a >= 0])) for e, a in zip(exact, approx))
    total = int((exact >= 0).sum())
    return hits / total if total else 1.0
