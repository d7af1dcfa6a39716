"""Train / validation / test splits of a dataset's interactions.

Three strategies, each deterministic (the random one under its seed):

* `leave_one_out`: per user, the last interaction in time is test, the one
  before it validation, the rest train (users with one interaction keep it in
  train; with two, the last is test). Ties in time keep the file order.
* `temporal_split`: one global cut in time; everything after the cut is held out.
* `random_holdout`: per user, a random fraction is held out.

A `Split` keeps the three frames (same columns as `Dataset.interactions`) and
hands out the training data as a `Dataset`, so nothing held out can reach a
model through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .dataset import Dataset

SplitName = Literal["loo", "temporal", "random"]


@dataclass(frozen=True)
class Split:
    """The three parts of a dataset's interactions, and how they were made."""

    dataset: Dataset
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    strategy: str

    def train_dataset(self) -> Dataset:
        """The training interactions only, as a dataset a model can be fitted on."""
        return self.dataset.with_interactions(self.train, name=f"{self.dataset.name}[train]")

    def known_before(self, part: Literal["valid", "test"]) -> pd.DataFrame:
        """What is known when `part` is predicted: train for valid, train + valid for test."""
        if part == "valid":
            return self.train
        return pd.concat([self.train, self.valid], ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def _position_from_end(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each row: how many of the same user's rows come after it in time (0 = the last), and the user's row count."""
    users = frame["user"].to_numpy()
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    from_end = np.empty(len(frame), dtype=np.int64)
    from_end[order] = ends - 1 - np.arange(len(frame))
    count = np.empty(len(frame), dtype=np.int64)
    count[order] = ends - starts
    return from_end, count


def leave_one_out(dataset: Dataset) -> Split:
    """Last interaction per user is test, second last validation (by time)."""
    frame = dataset.interactions
    from_end, count = _position_from_end(frame)
    is_test = (from_end == 0) & (count >= 2)
    is_valid = (from_end == 1) & (count >= 3)
    is_train = ~(is_test | is_valid)
    return Split(dataset, frame[is_train].reset_index(drop=True), frame[is_valid].reset_index(drop=True), frame[is_test].reset_index(drop=True), "loo")


def temporal_split(dataset: Dataset, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> Split:
    """A global cut in time: the last `test_fraction` of interactions are test, the
    `valid_fraction` before them validation. Interactions with the same timestamp
    stay on one side of a cut."""
    _check_fractions(valid_fraction, test_fraction)
    frame = dataset.interactions  # already sorted by time
    ts = frame["timestamp"].to_numpy()
    n = len(frame)
    test_cut = ts[min(n - 1, int(np.floor(n * (1 - test_fraction))))] if test_fraction else np.inf
    valid_cut = ts[min(n - 1, int(np.floor(n * (1 - test_fraction - valid_fraction))))] if valid_fraction else test_cut
    is_test = ts >= test_cut
    is_valid = (ts >= valid_cut) & ~is_test
    return Split(dataset, frame[~(is_test | is_valid)].reset_index(drop=True), frame[is_valid].reset_index(drop=True), frame[is_test].reset_index(drop=True), "temporal")


def random_holdout(dataset: Dataset, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> Split:
    """Per user, a random `test_fraction` of interactions is test and `valid_fraction` validation.

    Every user keeps at least one training interaction."""
    _check_fractions(valid_fraction, test_fraction)
    frame = dataset.interactions
    rng = np.random.default_rng(seed)
    users = frame["user"].to_numpy()
    order = np.lexsort((rng.random(len(frame)), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    counts = np.searchsorted(sorted_users, sorted_users, side="right") - starts
    rank = np.arange(len(frame)) - starts
    n_test = np.round(counts * test_fraction).astype(np.int64)
    n_valid = np.round(counts * valid_fraction).astype(np.int64)
    keep_one = np.minimum(n_test + n_valid, counts - 1)
    n_valid = np.maximum(0, keep_one - n_test)
    n_test = keep_one - n_valid
    part = np.zeros(len(frame), dtype=np.int8)  # 0 train, 1 valid, 2 test
    part_sorted = np.where(rank < n_test, 2, np.where(rank < n_test + n_valid, 1, 0))
    part[order] = part_sorted
    return Split(dataset, frame[part == 0].reset_index(drop=True), frame[part == 1].reset_index(drop=True), frame[part == 2].reset_index(drop=True), "random")


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(f"fractions must be in [0, 1) and sum below 1, got valid={valid_fraction}, test={test_fraction}")


def make_split(dataset: Dataset, strategy: SplitName = "loo", *, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> Split:
    """Split by name: ``"loo"``, ``"temporal"`` or ``"random"``."""
    if strategy == "loo":
        return leave_one_out(dataset)
    if strategy == "temporal":
        return temporal_split(dataset, valid_fraction, test_fraction)
    if strategy == "random":
        return random_holdout(dataset, valid_fraction, test_fraction, seed)
    raise ValueError(f"unknown split {strategy!r}; choose one of: loo, temporal, random")
