"""HSTU learns sequential structure, keeps its layer's promises (causal, time-aware, batch-independent),
round-trips through save/load and passes the shipped contract check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recarena.recommenders import ParamsError, Recommender, build_recommender, check_recommender, evaluate_recommender
from recarena.recommenders.generative.hstu import HSTU, HSTUModule, HSTUParams, length_pooled_batches, time_gap_buckets
from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import leave_one_out

FAST = {"epochs": 25, "patience": 4, "lr": 0.005, "max_len": 20, "dim": 32, "progress": False, "update_epochs": 1}


def sequential_world(n_users: int = 300, n_items: int = 100, seed: int = 0) -> Dataset:
    """Users walk a ring of items: the next item is 1-3 steps ahead (mostly 1), sometimes a random jump."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(n_users):
        item, now = int(rng.integers(n_items)), int(rng.integers(0, 10**6))
        for _ in range(int(rng.integers(12, 25))):
            users.append(user), items.append(item), times.append(now)
            item = int(rng.integers(n_items)) if rng.random() < 0.1 else (item + int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))) % n_items
            now += int(rng.integers(60, 86_400))
    frame = pd.DataFrame({"user": users, "item": items, "rating": np.ones(len(users)), "timestamp": times})
    return Dataset.from_frames("ring", frame.astype({"user": str, "item": str}), pd.DataFrame({"raw_id": [str(i) for i in range(n_items)]}))


@pytest.fixture(scope="module")
def ring_split():
    return leave_one_out(sequential_world())


@pytest.fixture(scope="module")
def ring_random_ndcg(ring_split):
    model = build_recommender("random", {}).fit(ring_split.train_dataset(), valid=ring_split.valid)
    return evaluate_recommender(model, ring_split, "test").metrics["ndcg@10"]


@pytest.fixture(scope="module")
def fitted(ring_split):
    return build_recommender("hstu", FAST).fit(ring_split.train_dataset(), valid=ring_split.valid)


def test_hstu_beats_random_clearly_on_sequential_data(fitted, ring_split, ring_random_ndcg):
    ndcg = evaluate_recommender(fitted, ring_split, "test").metrics["ndcg@10"]
    assert ndcg > 3 * ring_random_ndcg and ndcg > ring_random_ndcg + 0.2, f"hstu {ndcg:.4f} vs random {ring_random_ndcg:.4f}"
    assert fitted.full_softmax  # 100 items: the full softmax


def test_sampled_softmax_with_in_batch_negatives_learns_too(ring_split, ring_random_ndcg):
    params = {**FAST, "loss": "sampled", "negatives": 16}
    model = build_recommender("hstu", params).fit(ring_split.train_dataset(), valid=ring_split.valid)
    assert not model.full_softmax
    ndcg = evaluate_recommender(model, ring_split, "test").metrics["ndcg@10"]
    assert ndcg > 3 * ring_random_ndcg and ndcg > ring_random_ndcg + 0.2, f"sampled hstu {ndcg:.4f} vs random {ring_random_ndcg:.4f}"


def test_save_load_round_trips(fitted, ring_split, tmp_path):
    fitted.save(tmp_path / "hstu")
    loaded = Recommender.load(tmp_path / "hstu")
    assert isinstance(loaded, HSTU) and loaded.params == fitted.params
    users = np.arange(fitted.n_users)
    assert torch.equal(loaded.score(users), fitted.score(users))
    longer = [np.append(fitted.histories[u], (fitted.histories[u][-1] + 1) % fitted.n_items) for u in users[:30]]
    assert torch.equal(loaded.score(users[:30], longer), fitted.score(users[:30], longer))
    assert np.array_equal(loaded.recommend(users[:30], 10).items, fitted.recommend(users[:30], 10).items)


def test_registered_hstu_passes_check_recommender(tiny_world):
    check_recommender(build_recommender("hstu", FAST), tiny_world)


def test_layer_is_causal_and_reads_time_gaps():
    torch.manual_seed(0)
    module = HSTUModule(50, HSTUParams(dim=16, max_len=8, dropout=0.0)).eval()
    with torch.no_grad():  # make the time bias matter
        for layer in module.layers:
            layer.time_bias.copy_(torch.linspace(-2, 2, len(layer.time_bias)))
    items = torch.tensor([[3, 9, 4, 7, 1, 2]])
    times = torch.tensor([[0, 60, 3_600, 7_200, 86_400, 10**6]])
    with torch.no_grad():
        base = module(items, times)
        future = module(torch.tensor([[3, 9, 4, 7, 20, 30]]), times)
        later = module(items, times + torch.tensor([[0, 0, 0, 10**5, 10**5, 10**5]]))
    assert torch.allclose(base[:, :4], future[:, :4], atol=1e-6) and not torch.allclose(base[:, 4:], future[:, 4:])
    assert torch.allclose(base[:, :3], later[:, :3], atol=1e-6) and not torch.allclose(base[:, 3:], later[:, 3:])
    assert torch.allclose(base.norm(dim=-1), torch.ones(1, 6))


def test_time_gaps_fall_into_increasing_log_buckets():
    times = torch.tensor([[0, 1, 10, 1_000, 10**5, 10**8]])
    buckets = time_gap_buckets(times, 64)[0, :, 0]
    assert buckets[0] == 0 and buckets[1] == 0 and (buckets.diff()[1:] > 0).all()
    assert time_gap_buckets(times, 8).max() == 7


def test_unknown_timestamps_take_the_last_known_and_are_counted(fitted):
    user = 3
    known = fitted.histories[user]
    times = fitted._known_times()[user]
    before = fitted.unknown_time_items
    extra = np.append(known, [5, 6])
    filled = fitted.history_times(np.array([user]), [extra])[0]
    assert np.array_equal(filled[: len(known)], times) and (filled[len(known) :] == times[-1]).all()
    assert fitted.unknown_time_items == before + 2


def test_batches_group_similar_lengths_and_cover_every_window():
    lengths = np.random.default_rng(0).integers(1, 200, 1000)
    batches = length_pooled_batches(lengths, 16, np.random.default_rng(1))
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()  # per-batch padding of random batches would waste about half


def test_bf16_autocast_path_trains_on_cpu(ring_split):
    model = build_recommender("hstu", {**FAST, "epochs": 1, "precision": "bf16"}).fit(ring_split.train_dataset())
    assert model.bf16 and np.isfinite(model.training_log["losses"][0])
    scores = model.score(np.arange(5))
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


def test_bad_parameters_fail_in_one_line():
    with pytest.raises(ParamsError, match="divisible by heads"):
        build_recommender("hstu", {"dim": 30, "heads": 4})
    with pytest.raises(ParamsError, match="loss"):
        build_recommender("hstu", {"loss": "softmax"})
