"""Shared fixtures. The whole session uses its own RECARENA_HOME, so tests never read or
write a person's cache, and fetch ml-100k (from the RecBole wheel) once."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="recarena_test_home_")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["RECARENA_HOME"] = _HOME


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def ml100k():
    """The real MovieLens-100K, as recarena loads it."""
    from recarena.simulator.data import load_dataset

    return load_dataset("ml-100k")


@pytest.fixture(scope="session")
def small_synthetic():
    """A small synthetic dataset with known ground truth (in `.extra["truth"]`)."""
    from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

    return generate_synthetic(SyntheticConfig(n_users=300, n_items=120, mean_interactions=20, seed=7))
