"""Fixtures for the simulated users: one kit fitted on ml-100k's training part, shared by the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ml100k_holdout(ml100k):
    from recarena.simulator.data.splits import random_holdout

    return random_holdout(ml100k, valid_fraction=0.0, test_fraction=0.2, seed=0)


@pytest.fixture(scope="session")
def ml100k_kit(ml100k_holdout):
    from recarena.agents.kit import build_user_kit

    return build_user_kit(ml100k_holdout.train_dataset(), seed=0)
