"""A simulated user's memory: factual and emotional records, retrieval, and reflection.

* **Records**: factual (what was shown, watched, rated, and when) and emotional
  (how the user felt after a page or a session); reflections are records too.
* **Retrieval** for a page: candidates by embedding similarity (faiss inner
  product over normalised all-MiniLM-L6-v2 vectors, `recarena.agents.llm.embeddings`), re-ranked by
  ``relevance + recency_weight * recency_decay ** age + importance_weight * importance``,
  where age counts records added since.
* **Bounded**: past `capacity` records, the one with the lowest
  ``importance * recency`` is forgotten (reflections are kept longest: high importance).
* **Reflection**: every `reflect_every` records, a summary of the recent ones is
  added as a reflection: written by the LLM when one is given (cached by the LLM
  layer), otherwise a statistical update of liked and disliked genres.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import faiss
import numpy as np

from .llm.embeddings import Embedder
from .llm.text import FREE_TEXT, usable_or_none
from .prompts import template


@dataclass
class MemoryRecord:
    """One memory. `items` and `ratings` keep the facts behind a factual record."""

    kind: str  # "factual", "emotional" or "reflection"
    text: str
    time: int
    importance: float
    items: list[int] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryConfig:
    """How much a user remembers and how it recalls."""

    capacity: int = 200
    """Records kept at most."""
    recall: int = 5
    """Records returned by `retrieve`."""
    recency_decay: float = 0.98
    """Per-record decay of the recency score."""
    recency_weight: float = 0.5
    """Weight of recency against embedding similarity."""
    importance_weight: float = 0.5
    """Weight of importance against embedding similarity."""
    reflect_every: int = 10
    """A reflection after this many new records (0: never)."""


class Memory:
    """One user's memory (see the module docstring)."""

    def __init__(self, embedder: Embedder, config: MemoryConfig = MemoryConfig(), item_genres: Sequence[Sequence[str]] | None = None, llm: Any = None):
        self.embedder = embedder
        self.config = config
        self.item_genres = item_genres
        self.llm = llm
        self.records: list[MemoryRecord] = []
        self.vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self.clock = 0
        self.since_reflection = 0
        self.taste = ""

    def add(self, kind: str, text: str, importance: float = 0.5, items: Sequence[int] = (), ratings: Sequence[int] = ()) -> None:
        self.clock += 1
        self.records.append(MemoryRecord(kind, text, self.clock, float(importance), list(items), list(ratings)))
        self.vectors = np.vstack([self.vectors, self.embedder.encode([text])])
        if len(self.records) > self.config.capacity:
            self._forget_one()
        if kind != "reflection":
            self.since_reflection += 1
            if self.config.reflect_every and self.since_reflection >= self.config.reflect_every:
                self.reflect()

    def _recency(self) -> np.ndarray:
        ages = self.clock - np.array([r.time for r in self.records])
        return self.config.recency_decay**ages

    def _forget_one(self) -> None:
        keep_score = np.array([r.importance for r in self.records]) * self._recency()
        drop = int(np.argmin(keep_score))
        del self.records[drop]
        self.vectors = np.delete(self.vectors, drop, axis=0)

    def retrieve(self, query: str, k: int | None = None) -> list[str]:
        """The texts of the `k` most useful records for `query`, most useful first."""
        if not self.records:
            return []
        k = min(k or self.config.recall, len(self.records))
        index = faiss.IndexFlatIP(self.vectors.shape[1])
        index.add(self.vectors)
        shortlist = min(len(self.records), 4 * k)
        similarity, found = index.search(self.embedder.encode([query]), shortlist)
        found, similarity = found[0], similarity[0]
        recency = self._recency()[found]
        importance = np.array([self.records[i].importance for i in found])
        score = similarity + self.config.recency_weight * recency + self.config.importance_weight * importance
        order = np.argsort(-score, kind="stable")[:k]
        return [self.records[found[j]].text for j in order]

    def reflect(self) -> None:
        """Summarise the records since the last reflection into one reflection record."""
        recent = [r for r in self.records if r.kind != "reflection"][-self.config.reflect_every :]
        self.since_reflection = 0
        if not recent:
            return
        text = self._llm_reflection(recent) if self.llm is not None else None
        if text is None:
            text = self._statistical_reflection(recent)
        self.taste = text
        self.add("reflection", text, importance=0.9)

    def _llm_reflection(self, recent: list[MemoryRecord]) -> str | None:
        prompt = template("reflection").render(taste=self.taste or "not described yet", records="\n".join(f"- {r.text}" for r in recent))
        reply = self.llm.chat([{"role": "user", "content": prompt}], params={**FREE_TEXT, "max_tokens": 80}, component="users.reflection")
        if not reply.ok:
            return None
        # A fragment would become the user's taste for the rest of the session: the statistical reflection replaces it.
        return usable_or_none(reply.text, prompt=prompt, accountant=getattr(self.llm, "accountant", None), component="users.reflection")

    def _statistical_reflection(self, recent: list[MemoryRecord]) -> str:
        liked, disliked = Counter(), Counter()
        for record in recent:
            for item, rating in zip(record.items, record.ratings):
                for genre in self.item_genres[item] if self.item_genres is not None else ():
                    (liked if rating >= 4 else disliked if rating <= 2 else Counter())[genre] += 1
        parts = []
        if liked:
            parts.append("Lately you enjoyed " + ", ".join(g for g, _ in liked.most_common(3)) + ".")
        if disliked:
            parts.append("Lately you disliked " + ", ".join(g for g, _ in disliked.most_common(3)) + ".")
        return " ".join(parts) or "Nothing recent stood out."

    def get_state(self) -> dict[str, Any]:
        return {
            "records": [asdict(r) for r in self.records],
            "vectors": self.vectors.copy(),
            "clock": self.clock,
            "since_reflection": self.since_reflection,
            "taste": self.taste,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.records = [MemoryRecord(**r) for r in state["records"]]
        self.vectors = state["vectors"].copy()
        self.clock, self.since_reflection, self.taste = state["clock"], state["since_reflection"], state["taste"]
