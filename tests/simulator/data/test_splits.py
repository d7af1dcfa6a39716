"""Splits: who goes where, deterministically, with nothing held out leaking into train."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import leave_one_out, make_split, random_holdout, temporal_split


def tiny() -> Dataset:
    # user a: 4 interactions, the last two tie in time (file order decides); b: 2; c: 1.
    interactions = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "c"],
            "item": ["1", "2", "3", "4", "1", "2", "3"],
            "rating": [5, 4, 3, 2, 1, 2, 3],
            "timestamp": [10, 20, 30, 30, 15, 25, 5],
        }
    )
    items = pd.DataFrame({"raw_id": ["1", "2", "3", "4"]})
    return Dataset.from_frames("tiny", interactions, items)


def raw_pairs(data: Dataset, frame: pd.DataFrame) -> set[tuple[str, str]]:
    return {(data.users["raw_id"][u], data.items["raw_id"][i]) for u, i in zip(frame["user"], frame["item"])}


def test_leave_one_out_holds_out_the_last_two_per_user():
    data = tiny()
    split = leave_one_out(data)
    assert raw_pairs(data, split.test) == {("a", "4"), ("b", "2")}
    assert raw_pairs(data, split.valid) == {("a", "3")}
    assert raw_pairs(data, split.train) == {("a", "1"), ("a", "2"), ("b", "1"), ("c", "3")}


def test_known_before_test_includes_validation():
    split = leave_one_out(tiny())
    assert len(split.known_before("valid")) == len(split.train)
    assert len(split.known_before("test")) == len(split.train) + len(split.valid)
    assert split.train_dataset().n_interactions == len(split.train)


@pytest.mark.parametrize("strategy", ["loo", "temporal", "random"])
def test_parts_partition_the_interactions(ml100k, strategy):
    split = make_split(ml100k, strategy, seed=3)
    parts = pd.concat([split.train, split.valid, split.test])
    assert len(parts) == ml100k.n_interactions
    assert not parts.duplicated().any()
    again = make_split(ml100k, strategy, seed=3)
    pd.testing.assert_frame_equal(again.test, split.test)


def test_leave_one_out_on_ml100k_is_one_test_and_one_valid_per_user(ml100k):
    split = leave_one_out(ml100k)
    assert len(split.test) == len(split.valid) == ml100k.n_users
    latest = ml100k.interactions.groupby("user")["timestamp"].max()
    assert (split.test.set_index("user")["timestamp"] == latest.loc[split.test["user"]].to_numpy()).all()


def test_temporal_split_cuts_once_in_time(ml100k):
    split = temporal_split(ml100k, 0.1, 0.2)
    assert split.train["timestamp"].max() < split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() < split.test["timestamp"].min()
    assert abs(len(split.test) / ml100k.n_interactions - 0.2) < 0.01


def test_random_holdout_depends_on_the_seed_and_keeps_a_training_row_per_user(ml100k):
    first, second = random_holdout(ml100k, seed=1), random_holdout(ml100k, seed=2)
    assert not first.test.equals(second.test)
    assert set(first.train["user"]) == set(range(ml100k.n_users))
    per_user = first.test.groupby("user").size() / ml100k.interactions.groupby("user").size()
    assert np.allclose(per_user.mean(), 0.1, atol=0.01)


def test_bad_fractions_and_names_are_refused(ml100k):
    with pytest.raises(ValueError, match="sum below 1"):
        temporal_split(ml100k, 0.6, 0.5)
    with pytest.raises(ValueError, match="choose one of: loo, temporal, random"):
        make_split(ml100k, "kfold")
