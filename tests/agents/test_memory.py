"""Memory: retrieval, forgetting, reflection and snapshots; one test with the real all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from recarena.agents.llm import ChatReply
from recarena.agents.llm.embeddings import MiniLMEmbedder
from recarena.agents.memory import Memory, MemoryConfig


class WordHashEmbedder:
    """Bag of words hashed into 64 dimensions: texts sharing words are similar."""

    dim = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_retrieval_prefers_relevant_then_recent_and_important_records():
    memory = Memory(WordHashEmbedder(), MemoryConfig(reflect_every=0, recall=2))
    memory.add("factual", "you watched alien space horror", importance=0.5)
    memory.add("factual", "you watched a quiet romance in paris", importance=0.5)
    memory.add("emotional", "you felt bored by the comedy page", importance=0.5)
    assert memory.retrieve("space alien movies")[0] == "you watched alien space horror"
    assert memory.retrieve("romance paris")[0] == "you watched a quiet romance in paris"


def test_memory_is_bounded_and_forgets_the_least_important_old_record():
    memory = Memory(WordHashEmbedder(), MemoryConfig(capacity=3, reflect_every=0))
    memory.add("factual", "old and unimportant", importance=0.1)
    memory.add("factual", "old but important", importance=0.9)
    memory.add("factual", "recent", importance=0.5)
    memory.add("factual", "newest", importance=0.5)
    texts = [r.text for r in memory.records]
    assert len(texts) == 3 and "old and unimportant" not in texts and "old but important" in texts
    assert memory.vectors.shape == (3, 64)


def test_statistical_reflection_summarises_genres_of_recent_ratings():
    genres = [["Sci-Fi"], ["Romance"], ["Sci-Fi", "Action"]]
    memory = Memory(WordHashEmbedder(), MemoryConfig(reflect_every=2), item_genres=genres)
    memory.add("factual", "page one", items=[0, 1], ratings=[5, 1])
    memory.add("factual", "page two", items=[2], ratings=[4])
    reflection = memory.records[-1]
    assert reflection.kind == "reflection"
    assert reflection.text.startswith("Lately you enjoyed Sci-Fi") and "disliked Romance" in reflection.text


def test_llm_reflection_is_used_when_an_llm_is_given():
    class Scribe:
        def chat(self, messages, **kwargs):
            assert "Recent experiences" in messages[0]["content"]
            return ChatReply(text="You now crave space operas.")

    memory = Memory(WordHashEmbedder(), MemoryConfig(reflect_every=1), llm=Scribe())
    memory.add("factual", "you watched Star Wars", items=[], ratings=[])
    assert memory.taste == "You now crave space operas."


def test_snapshot_restores_exactly():
    memory = Memory(WordHashEmbedder(), MemoryConfig(reflect_every=0))
    memory.add("factual", "first")
    state = memory.get_state()
    memory.add("factual", "second")
    memory.set_state(state)
    assert [r.text for r in memory.records] == ["first"] and memory.vectors.shape == (1, 64)


def test_real_minilm_embeddings_retrieve_by_meaning():
    pytest.importorskip("sentence_transformers")
    memory = Memory(MiniLMEmbedder(), MemoryConfig(reflect_every=0, recall=1, recency_weight=0.0, importance_weight=0.0))
    memory.add("factual", "You watched Star Wars and Alien, rated both 5.")
    memory.add("factual", "You watched Titanic and Notting Hill, rated both 2.")
    memory.add("emotional", "You felt hungry and went to cook pasta.")
    assert memory.retrieve("a spaceship adventure among the stars") == ["You watched Star Wars and Alien, rated both 5."]
    assert memory.retrieve("a love story") == ["You watched Titanic and Notting Hill, rated both 2."]
