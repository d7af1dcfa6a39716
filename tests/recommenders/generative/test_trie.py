"""The prefix trie keeps beam search on real items, whatever the model prefers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recarena.recommenders.errors import RecommenderError
from recarena.recommenders.generative.rqvae import semantic_ids
from recarena.recommenders.generative.trie import SemanticIdTrie, constrained_beam_search, tiered_item_scores

SIZES = [6, 6, 6]


@pytest.fixture(scope="module")
def trie() -> SemanticIdTrie:
    rng = np.random.default_rng(0)
    ids = semantic_ids(rng.integers(0, 6, (40, 3)))  # a sparse catalog: most of the 216 prefixes are not items
    return SemanticIdTrie(ids, SIZES + [int(ids[:, -1].max()) + 1])


def adversarial_step(trie: SemanticIdTrie, seed: int):
    """A model that puts most of its mass on codes no valid ID continues with."""
    generator = torch.Generator().manual_seed(seed)

    def step(depth: int, codes: torch.Tensor) -> torch.Tensor:
        queries, beams, _ = codes.shape
        logits = torch.randn(queries, beams, trie.sizes[depth], generator=generator)
        valid_anywhere = torch.zeros(trie.sizes[depth], dtype=torch.bool)
        valid_anywhere[torch.as_tensor(np.unique(trie.ids[:, depth]))] = True
        logits[..., ~valid_anywhere] += 10.0
        if depth > 0:  # favour codes that are valid somewhere but not after this beam's prefix
            logits += 5.0 * torch.rand(logits.shape, generator=generator)
        return torch.log_softmax(logits, -1)

    return step


@pytest.mark.parametrize("seed", range(5))
def test_every_beam_is_a_real_item(trie, seed):
    result = constrained_beam_search(adversarial_step(trie, seed), trie, 8, 12, torch.device("cpu"))
    items, scores = result.items.numpy(), result.scores.numpy()
    assert (items >= 0).all() and np.isfinite(scores).all()
    spelt = result.codes.numpy().reshape(-1, trie.depth)
    assert trie.contains(spelt).all()  # the codes each beam generated form a real ID ...
    assert np.array_equal(spelt, trie.ids[items.reshape(-1)])  # ... the one of the item it returns
    for row, values in zip(items, scores):
        assert len(set(row.tolist())) == len(row)
        assert (np.diff(values) <= 1e-6).all()


def test_beam_scores_are_the_sequence_log_probabilities(trie):
    # A model whose log-probs do not depend on the prefix: an ID's score is a sum over fixed tables.
    tables = [torch.log_softmax(torch.randn(size, generator=torch.Generator().manual_seed(d)), -1) for d, size in enumerate(trie.sizes)]
    expected = sum(tables[d][trie.ids[:, d]] for d in range(trie.depth))

    def search(beams):
        return constrained_beam_search(lambda d, c: tables[d].expand(c.shape[0], c.shape[1], -1), trie, 1, beams, torch.device("cpu"))

    narrow = search(5)  # beam search is approximate, but each score is its item's exact log-probability
    assert torch.allclose(narrow.scores[0], expected[narrow.items[0]])
    wide = search(trie.n_items)  # a beam as wide as the catalog is exhaustive
    best = torch.topk(expected, trie.n_items)
    assert wide.items[0].tolist() == best.indices.tolist() and torch.allclose(wide.scores[0], best.values)


def test_a_catalog_smaller_than_the_beam_pads(trie):
    small = SemanticIdTrie(np.array([[0, 1, 0], [2, 3, 0], [2, 3, 1]]), [4, 4, 2])
    result = constrained_beam_search(adversarial_step(small, 0), small, 3, 5, torch.device("cpu"))
    assert sorted(result.items[0, :3].tolist()) == [0, 1, 2]
    assert (result.items[:, 3:] == -1).all() and torch.isinf(result.scores[:, 3:]).all()
    assert small.contains(result.codes[0, :3].numpy()).all() and not small.contains(np.array([[0, 3, 0]])).any()


def test_tiered_scores_rank_the_beams_first_and_are_finite(trie):
    result = constrained_beam_search(adversarial_step(trie, 1), trie, 6, 7, torch.device("cpu"))
    scores = tiered_item_scores(result, trie)
    assert scores.shape == (6, trie.n_items) and torch.isfinite(scores).all()
    top = torch.topk(scores, 7).indices
    assert top.tolist() == result.items.tolist()
    assert torch.allclose(torch.gather(scores, 1, result.items), result.scores)


@pytest.mark.parametrize(
    ("ids", "sizes", "problem"),
    [
        (np.array([[0, 1], [0, 1]]), [2, 2], "share one semantic ID"),
        (np.array([[0, 5]]), [2, 2], "outside"),
        (np.array([[0, 1, 1]]), [2, 2], "must be"),
    ],
)
def test_bad_ids_are_refused_in_one_line(ids, sizes, problem):
    with pytest.raises(RecommenderError, match=problem) as error:
        SemanticIdTrie(ids, sizes)
    assert "\n" not in str(error.value)
