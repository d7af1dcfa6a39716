"""Small synthetic worlds and fast settings shared by the recommender tests."""

from __future__ import annotations

import pytest

from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

# A few epochs on a few hundred users: seconds per model on 2 cores. TIGER gets patience 5: with
# patience 3 its noisy validation stopped it at epoch 9 (NDCG@10 0.073 against 0.099 at 20 epochs).
FAST_PARAMS: dict[str, dict] = {
    "random": {},
    "pop": {},
    "itemknn": {"neighbours": 50, "progress": False},
    "bpr": {"epochs": 30, "patience": 5, "batch_size": 256, "lr": 0.01, "progress": False, "update_epochs": 1},
    "lightgcn": {"epochs": 30, "patience": 5, "batch_size": 256, "lr": 0.01, "progress": False, "update_epochs": 1},
    "sasrec": {"epochs": 30, "patience": 5, "lr": 0.005, "dropout": 0.2, "max_len": 20, "progress": False, "update_epochs": 1},
    "hstu": {"epochs": 30, "patience": 5, "lr": 0.005, "max_len": 20, "progress": False, "update_epochs": 1},
    "tiger": {
        "epochs": 20, "patience": 5, "lr": 0.005, "dim": 32, "heads": 2, "inner_dim": 64, "max_len": 10, "codebook_size": 8,
        "rqvae_epochs": 60, "beam_size": 10, "progress": False, "update_epochs": 1,
    },
    # A pool of one needs no LLM call: the shared contract tests stay fast; test_llm_rerank.py covers the LLM.
    "llm-rerank": {"pool": 1},
}


@pytest.fixture(scope="session")
def world():
    """300 users x 200 items drawn from known tastes and popularity."""
    return generate_synthetic(SyntheticConfig(n_users=300, n_items=200, mean_interactions=20, seed=1))


@pytest.fixture(scope="session")
def world_split(world):
    return leave_one_out(world)


@pytest.fixture(scope="session")
def tiny_world():
    """60 users x 40 items: for the contract checks."""
    return generate_synthetic(SyntheticConfig(n_users=60, n_items=40, mean_interactions=10, seed=2))
