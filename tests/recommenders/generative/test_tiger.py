"""TIGER end to end: semantic IDs from real MiniLM item text, a transformer that generates the next ID,
beam search that only returns real items (cold ones too), and a save/load round trip.

The world here has sequential structure a model of "what comes next" can learn:
items form 10 genre groups of 12, each group an ordered series, and each user
walks forward through one series (now and then a random item). The shared
contract check (``check_recommender``) runs in tests/recommenders/test_contract.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recarena.recommenders import build_recommender, evaluate_recommender
from recarena.recommenders.errors import ParamsError
from recarena.recommenders.generative.item_text import cache_path, content_vectors, item_texts
from recarena.recommenders.generative.tiger import Tiger, training_pairs
from recarena.simulator.data import Dataset
from recarena.simulator.data.dataset import build_item_frame, build_user_frame
from recarena.simulator.data.splits import leave_one_out

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Western", "Documentary", "Animation", "Musical"]
SERIES = ["Galaxy Raiders", "Laugh Factory", "Quiet Rooms", "Night Terror", "Paris Hearts", "Star Colony",
          "Dust Riders", "Deep Oceans", "Toy Kingdom", "Broadway Nights"]  # fmt: skip
PER_GROUP = 12
COLD = np.array([g * PER_GROUP + 6 for g in range(len(GENRES))])  # one item per series that nobody has had

FAST = {
    "epochs": 12, "patience": 3, "lr": 0.005, "dim": 48, "heads": 2, "inner_dim": 96, "max_len": 8, "codebook_size": 12,
    "rqvae_epochs": 120, "rqvae_batch_size": 64, "beam_size": 12, "progress": False, "update_epochs": 1,
}  # fmt: skip


def sequential_world(n_users: int = 400, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_items = len(GENRES) * PER_GROUP
    items = pd.DataFrame({
        "raw_id": [f"i{i}" for i in range(n_items)],
        "title": [f"{SERIES[i // PER_GROUP]} Part {i % PER_GROUP + 1}" for i in range(n_items)],
        "year": [1960 + 4 * (i % PER_GROUP) for i in range(n_items)],
        "genres": [[GENRES[i // PER_GROUP]] for i in range(n_items)],
    })  # fmt: skip
    rows = []
    for user in range(n_users):
        group, position = rng.integers(len(GENRES)), rng.integers(PER_GROUP)
        for step in range(int(rng.integers(8, 14))):
            item = group * PER_GROUP + (position + step) % PER_GROUP
            if rng.random() < 0.1:
                item = int(rng.integers(n_items))
            if item not in COLD:  # cold items are in the catalog but nobody has had them yet
                rows.append((user, item, 4.0, 1_600_000_000 + 1000 * user + step))
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).drop_duplicates(["user", "item"])
    frame = frame.astype({"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64})
    users = pd.DataFrame({"raw_id": [f"u{u}" for u in range(n_users)]})
    return Dataset(
        name="sequential-series",
        interactions=frame.sort_values("timestamp", kind="stable", ignore_index=True),
        items=build_item_frame(items, "test items"),
        users=build_user_frame(users, pd.Series([], dtype=str), "test users"),
    )


@pytest.fixture(scope="module")
def world():
    return sequential_world()


@pytest.fixture(scope="module")
def split(world):
    return leave_one_out(world)


@pytest.fixture(scope="module")
def tiger(split):
    return build_recommender("tiger", FAST).fit(split.train_dataset(), valid=split.valid)


def test_tiger_beats_random_clearly_on_sequential_data(tiger, split):
    random = build_recommender("random").fit(split.train_dataset())
    ours = evaluate_recommender(tiger, split, "test").metrics["ndcg@10"]
    chance = evaluate_recommender(random, split, "test").metrics["ndcg@10"]
    assert ours > 3 * chance and ours > chance + 0.15, f"tiger {ours:.4f} vs random {chance:.4f}"


def test_semantic_ids_cover_the_catalog_and_are_reported(tiger, world):
    ids = tiger.semantic_ids
    assert ids.shape == (world.n_items, 4) and len(np.unique(ids, axis=0)) == world.n_items
    stats = tiger.codebook_stats
    assert len(stats["usage"]) == 3 and min(stats["usage"]) > 0.5
    # the reported collisions are the items whose 3 codes equal another item's (the 4th code tells them apart)
    _, group_of, sizes = np.unique(ids[:, :3], axis=0, return_inverse=True, return_counts=True)
    assert stats["collision_rate"] == pytest.approx((sizes[group_of.ravel()] > 1).mean())
    assert stats["max_collisions"] == sizes.max()
    # Items of one series share their first code far more often than items of different series.
    group = np.arange(world.n_items) // PER_GROUP
    same_series = (ids[:, None, 0] == ids[None, :, 0])[group[:, None] == group[None, :]].mean()
    other_series = (ids[:, None, 0] == ids[None, :, 0])[group[:, None] != group[None, :]].mean()
    assert same_series > other_series + 0.3


def test_recommend_returns_the_top_beams_as_real_items(tiger):
    users = np.arange(20)
    beams = tiger.beam_search([tiger.histories[u] for u in users])
    page = tiger.recommend(users, k=5, exclude=None)
    assert np.array_equal(page.items, beams.items[:, :5].numpy())
    assert np.allclose(page.scores, beams.scores[:, :5].numpy(), atol=1e-5)
    assert ((page.items >= 0) & (page.items < tiger.n_items)).all()
    scores = tiger.score(users)
    assert torch.isfinite(scores).all()


def test_cold_items_can_be_recommended(tiger, world):
    """Items with no interaction get IDs from their text, so the model can still generate them."""
    assert not world.interactions["item"].isin(COLD).any()
    assert tiger.trie.n_items == world.n_items
    # Queries: the series so far, up to the item before a cold one; the target is the cold item.
    histories, targets = [], []
    for cold in COLD:
        start = cold - cold % PER_GROUP
        for length in range(1, 7):
            histories.append(np.arange(max(start, cold - length), cold))
            targets.append(cold)
    users = np.zeros(len(targets), np.int64)
    page = tiger.recommend(users, k=10, exclude=histories, history=histories)
    hit = np.mean([t in row for t, row in zip(targets, page.items)])
    chance = 10 / (world.n_items - 3.5)
    assert np.isin(page.items, COLD).any(), "no cold item was ever generated"
    assert hit > 2 * chance, f"cold recall@10 {hit:.3f} vs chance {chance:.3f}"


def test_save_load_round_trip(tiger, tmp_path):
    tiger.save(tmp_path / "tiger")
    loaded = Tiger.load(tmp_path / "tiger")
    users = np.arange(30)
    assert np.array_equal(loaded.semantic_ids, tiger.semantic_ids)
    assert torch.equal(loaded.score(users), tiger.score(users))
    assert np.array_equal(loaded.recommend(users, 10).items, tiger.recommend(users, 10).items)
    assert loaded.codebook_stats == tiger.codebook_stats


def test_content_vectors_come_from_minilm_and_are_cached(world):
    vectors = content_vectors(world.items, progress=False)
    assert vectors.shape == (world.n_items, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert cache_path(item_texts(world.items)).exists()
    # Two parts of one series read alike; a different genre and series reads differently.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[PER_GROUP * 3]


def test_training_pairs_are_every_next_item_with_its_left_padded_past():
    inputs, targets = training_pairs([np.array([5, 6, 7]), np.array([9])], max_len=2)
    assert targets.tolist() == [6, 7]
    assert inputs.tolist() == [[0, 6], [6, 7]]  # ids + 1, 0 = padding


def test_bad_parameters_fail_in_one_line():
    with pytest.raises(ParamsError, match="divisible"):
        build_recommender("tiger", {"dim": 30, "heads": 4})
    with pytest.raises(ParamsError, match="encoder_tokens"):
        build_recommender("tiger", {"encoder_tokens": "words"})


@pytest.mark.parametrize("pool_items", [True, False])
def test_beams_decoded_together_match_beams_decoded_alone(pool_items):
    """Beam search feeds all beams of a user through the decoder as one masked sequence; that must
    equal decoding each beam on its own (both encoder layouts: pooled items and one token per code)."""
    from recarena.recommenders.generative.seq2seq import TigerTransformer

    rng = np.random.default_rng(0)
    ids = np.unique(np.concatenate([rng.integers(0, 6, (50, 3)), np.zeros((50, 1), np.int64)], 1), axis=0)
    module = TigerTransformer(ids, [6, 6, 6, 1], 16, 2, 1, 32, 0.1, 5, pool_items=pool_items).eval()
    history = torch.as_tensor(rng.integers(0, len(ids) + 1, (3, 5)))
    history[0] = 0  # a user with no history at all
    codes = torch.as_tensor(rng.integers(0, 6, (3, 4, 2)))
    with torch.no_grad():
        memory, padding = module.encode(history)
        together = module.decode_beams(codes, memory, padding)
        alone = module.decode(codes.reshape(12, 2), memory.repeat_interleave(4, 0), padding.repeat_interleave(4, 0))[:, -1]
        assert torch.isfinite(together).all()
        assert torch.allclose(together.reshape(12, -1), alone, atol=1e-5)
        loss = module.loss(history, torch.as_tensor(ids[:3]))
    assert torch.isfinite(loss) and loss > 0
