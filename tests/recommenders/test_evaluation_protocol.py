"""The evaluation protocol against hand-computed cases, and its guarantees on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from recarena.recommenders.evaluation import evaluate, evaluate_sampled, metrics_from_hits
from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import Split, leave_one_out


def test_metrics_for_one_target_at_rank_three():
    hits = torch.tensor([[False, False, True, False, False]])
    m = metrics_from_hits(hits, torch.tensor([1]), ks=[2, 5])
    assert m["hr@2"].item() == 0 and m["hr@5"].item() == 1
    assert m["ndcg@5"].item() == pytest.approx(1 / math.log2(4))
    assert m["mrr@5"].item() == pytest.approx(1 / 3) and m["mrr@2"].item() == 0


def test_metrics_for_two_targets_with_one_hit():
    # Targets at ranks 1 and (beyond the cut) -> recall 1/2; IDCG counts two ideal hits.
    hits = torch.tensor([[True, False, False]])
    m = metrics_from_hits(hits, torch.tensor([2]), ks=[3])
    assert m["recall@3"].item() == pytest.approx(0.5)
    assert m["ndcg@3"].item() == pytest.approx(1.0 / (1.0 + 1 / math.log2(3)))
    assert m["mrr@3"].item() == 1.0


def test_more_targets_than_k_caps_the_ideal_list():
    hits = torch.tensor([[True, True]])
    m = metrics_from_hits(hits, torch.tensor([5]), ks=[2])
    assert m["ndcg@2"].item() == pytest.approx(1.0)
    assert m["recall@2"].item() == pytest.approx(0.4)


def hand_split() -> Split:
    # Two users, five items. user x: train {0, 1}, test {2}; user y: train {0}, test {3, 4}.
    interactions = pd.DataFrame(
        {"user": ["x", "x", "y", "x", "y", "y"], "item": ["0", "1", "0", "2", "3", "4"], "rating": 1.0, "timestamp": [1, 2, 3, 4, 5, 6]}
    )
    data = Dataset.from_frames("hand", interactions, pd.DataFrame({"raw_id": list("01234")}))
    frame = data.interactions
    is_test = frame["timestamp"] >= 4
    return Split(data, frame[~is_test].reset_index(drop=True), frame.iloc[:0], frame[is_test].reset_index(drop=True), "hand")


def test_full_ranking_excludes_known_items_and_averages_over_users():
    split = hand_split()
    fixed = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])  # item 0 best ... item 4 worst, for everyone
    result = evaluate(lambda users: fixed.expand(len(users), -1), split, "test", ks=[1, 2])
    # x: items 0, 1 excluded -> ranking 2, 3, 4: target 2 at rank 1.
    # y: item 0 excluded -> ranking 1, 2, 3, 4: targets 3, 4 at ranks 3 and 4 -> no hit in top 2.
    assert result["hr@1"] == pytest.approx(0.5)
    assert result["recall@2"] == pytest.approx(0.5)
    assert result["ndcg@2"] == pytest.approx(0.5)


def test_per_user_figures_are_kept_when_asked_and_average_to_the_metrics():
    split = hand_split()
    fixed = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    result = evaluate(lambda users: fixed.expand(len(users), -1), split, "test", ks=[1, 2], per_user=True, batch_size=1)
    table = result.per_user
    assert table.index.tolist() == [0, 1] and table.index.name == "user"  # x, then y
    assert table["hr@1"].tolist() == [1.0, 0.0] and table["recall@2"].tolist() == [1.0, 0.0]
    assert {name: float(table[name].mean()) for name in table} == pytest.approx(result.metrics)
    assert evaluate(lambda users: fixed.expand(len(users), -1), split, "test", ks=[1]).per_user is None
    assert result.n_users == 2 and result.protocol == "full"


def test_an_oracle_scores_perfectly_and_a_shape_error_is_named(ml100k):
    split = leave_one_out(ml100k)
    truth = torch.zeros(ml100k.n_users, ml100k.n_items)
    truth[torch.tensor(split.test["user"].to_numpy(), dtype=torch.long), torch.tensor(split.test["item"].to_numpy(), dtype=torch.long)] = 1.0
    result = evaluate(lambda users: truth[torch.as_tensor(users, dtype=torch.long)], split, ks=[1, 10])
    assert result["hr@1"] == 1.0 and result["ndcg@10"] == 1.0 and result.n_users == ml100k.n_users
    with pytest.raises(ValueError, match=r"scorer returned shape \(3, 1682\)"):
        evaluate(lambda users: torch.zeros(3, ml100k.n_items), split)


def test_popularity_beats_random_under_both_protocols(ml100k):
    from recarena.recommenders import MostPopular, RandomRecommender

    split = leave_one_out(ml100k)
    pop = MostPopular().fit(split.train_dataset())
    rnd = RandomRecommender(seed=0).fit(split.train_dataset())
    assert evaluate(pop.score, split)["ndcg@10"] > 5 * evaluate(rnd.score, split)["ndcg@10"]
    sampled_random = evaluate_sampled(rnd.score, split, n_negatives=100)["hr@10"]
    assert abs(sampled_random - 10 / 101) < 0.04  # a random ranker finds the target 10 times in 101
    assert evaluate_sampled(pop.score, split)["hr@10"] > 0.3


def test_sampled_protocol_counts_ties_against_the_target():
    split = hand_split()
    flat = lambda users: torch.ones(len(users), 5)  # noqa: E731
    result = evaluate_sampled(flat, split, ks=[1], n_negatives=2, seed=0)
    assert result["hr@1"] == 0.0
    assert evaluate_sampled(flat, split, n_negatives=2, seed=0).metrics == evaluate_sampled(flat, split, n_negatives=2, seed=0).metrics


def test_scoring_all_of_ml100k_is_a_batched_tensor_operation(ml100k):
    split = leave_one_out(ml100k)
    calls = []

    def scorer(users: np.ndarray) -> torch.Tensor:
        calls.append(len(users))
        return torch.zeros(len(users), ml100k.n_items)

    evaluate(scorer, split, batch_size=500)
    assert calls == [500, 443]


def test_ties_are_broken_by_item_id_so_k_does_not_change_other_cut_offs(ml100k):
    from recarena.recommenders.evaluation import top_k_items

    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0]])
    assert top_k_items(scores, 2).tolist() == [[1, 2]]
    assert top_k_items(scores, 4).tolist() == [[1, 2, 4, 3]]
    split = leave_one_out(ml100k)
    from recarena.recommenders import MostPopular

    pop = MostPopular().fit(split.train_dataset())  # many items share a count
    assert evaluate(pop.score, split, ks=[10])["ndcg@10"] == evaluate(pop.score, split, ks=[10, 50])["ndcg@10"]
