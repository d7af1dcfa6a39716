"""Fixtures for the simulator: a tiny synthetic world (fast) and, once per session, the kit on all of ml-100k."""

from __future__ import annotations

import pytest

TINY = dict(n_users=80, n_items=60, mean_interactions=15, seed=11)


def tiny_dataset():
    from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

    return generate_synthetic(SyntheticConfig(**TINY))


@pytest.fixture(scope="session")
def tiny_world():
    return tiny_dataset()


@pytest.fixture(scope="session")
def tiny_kit(tiny_world):
    from recarena.agents.kit import build_user_kit
    from recarena.agents.preferences import PreferenceConfig

    return build_user_kit(tiny_world, seed=0, preference_config=PreferenceConfig(epochs=40, seed=0))


@pytest.fixture(scope="session")
def tiny_dynamic_kit(tiny_world):
    """Users with dynamics: the kit on the tiny world's training part, dynamics fitted on its validation part."""
    from recarena.agents.dynamics import DynamicsConfig
    from recarena.agents.kit import build_user_kit
    from recarena.agents.preferences import PreferenceConfig
    from recarena.simulator.data.splits import leave_one_out

    split = leave_one_out(tiny_world)
    kit = build_user_kit(split.train_dataset(), seed=0, preference_config=PreferenceConfig(epochs=40, seed=0), validation=split.valid,
                         dynamics_config=DynamicsConfig(negatives=20))  # fmt: skip
    kit.behaviour.dynamics.weights = {"taste": 1.0, "recent_cooc": 2.0, "recent_taste": 1.0}  # planted: recent items must matter
    return kit


@pytest.fixture(scope="session")
def ml100k_full_kit(ml100k):
    """The kit the registered env uses (fitted on all of ml-100k), shared with it."""
    from recarena.simulator.registration import movielens_kit

    return movielens_kit("ml-100k", 0)


def no_leaving(kit):
    """A user factory whose statistical users never leave (to reach the page limit)."""
    from recarena.agents.statistical import BehaviourConfig, StatisticalBehaviour, StatisticalUser

    behaviour = StatisticalBehaviour(kit.preferences, kit.behaviour.activity_tiers, BehaviourConfig(leave_base=(-30.0, -30.0, -30.0), leave_per_page=0.0))
    return lambda u, rng: StatisticalUser(kit.profiles[u], behaviour, rng)
