"""Users with dynamics (agents/dynamics.py) on a planted world: users walk along chains of items,
so a user's next item is a neighbour of its last ones. The fitted model must find that, and
only from the validation part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recarena.agents.dynamics import DynamicsConfig, build_dynamics, fit_dynamics, recent_items
from recarena.agents.preferences import PreferenceConfig, fit_preferences
from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import leave_one_out

CHAINS, CHAIN_LENGTH, USERS, SEGMENTS, SEGMENT = 8, 12, 240, 3, 4
DAY = 86_400


def chain_world(seed: int = 0) -> Dataset:
    """Each user walks three random chains in turn, four items each in chain order, one a day: a static
    taste spreads over the three chains, while the next item always continues the last one."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(USERS):
        day = rng.integers(0, 60)
        for chain in rng.choice(CHAINS, SEGMENTS, replace=False):
            start = rng.integers(CHAIN_LENGTH)
            for step in range(SEGMENT):
                item = chain * CHAIN_LENGTH + (start + step) % CHAIN_LENGTH
                rows.append((f"u{user}", f"i{item}", float(rng.integers(1, 6)), int(day * DAY + user)))
                day += 1
    interactions = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    items = pd.DataFrame({"raw_id": [f"i{i}" for i in range(CHAINS * CHAIN_LENGTH)],
                          "genres": [[f"g{i // CHAIN_LENGTH}"] for i in range(CHAINS * CHAIN_LENGTH)]})  # fmt: skip
    return Dataset.from_frames("chains", interactions, items)


@pytest.fixture(scope="module")
def world():
    split = leave_one_out(chain_world())
    train = split.train_dataset()
    preferences = fit_preferences(train, PreferenceConfig(epochs=30, seed=0))
    return split, train, preferences


def test_the_fitted_user_follows_its_recent_items(world):
    split, train, preferences = world
    dynamics, report = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    decays = DynamicsConfig().decays_tried
    assert set(report.variants) == {"static", "popularity"} | {f"{v} decay={d:g}" for v in ("recent", "dynamic") for d in decays}
    assert report.chosen.split()[0] in ("recent", "dynamic")
    assert dynamics.config.recency_decay == report.variants[report.chosen].recency_decay
    assert dynamics.weights["recent_cooc"] > 0
    # Out-of-fold validation likelihood: the next item is far more likely than under the static user.
    assert report.variants[report.chosen].log_likelihood > report.variants["static"].log_likelihood + 0.3
    assert report.variants[report.chosen].auc > report.variants["static"].auc


def test_interest_moves_with_the_recent_items(world):
    split, train, preferences = world
    dynamics, _ = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    user, chain_a, chain_b = 0, 0, 5
    candidates = np.array([[chain_a * CHAIN_LENGTH + 3, chain_b * CHAIN_LENGTH + 3]])
    taste = preferences.watch_logits(np.array([user]), candidates)
    after_a = dynamics.logits(taste, candidates, np.array([[chain_a * CHAIN_LENGTH + 2]]), np.array([10 * DAY]))
    after_b = dynamics.logits(taste, candidates, np.array([[chain_b * CHAIN_LENGTH + 2]]), np.array([10 * DAY]))
    assert after_a[0, 0] > after_b[0, 0] and after_b[0, 1] > after_a[0, 1]


def test_the_static_weights_give_the_static_user(world):
    _, train, preferences = world
    dynamics = build_dynamics(train, preferences)
    users, items = np.array([1, 2]), np.array([[0, 5, 9], [40, 41, 42]])
    recent, last = recent_items(train, 10)
    taste = preferences.watch_logits(users, items)
    np.testing.assert_allclose(dynamics.logits(taste, items, recent[users], last[users]), taste)


def test_the_intercept_keeps_the_mean_watch_probability_of_a_random_item(world):
    split, train, preferences = world
    dynamics, _ = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    recent, last = recent_items(train, 10)
    users = np.arange(USERS)
    items = np.random.default_rng(5).integers(0, train.n_items, size=(USERS, 20))
    taste = preferences.watch_logits(users, items)
    mean = lambda z: (1 / (1 + np.exp(-z))).mean()  # noqa: E731
    assert mean(dynamics.logits(taste, items, recent[users], last[users])) == pytest.approx(mean(taste), rel=0.15)


def test_popularity_now_counts_only_the_days_before(world):
    _, train, preferences = world
    dynamics = build_dynamics(train, preferences, DynamicsConfig(popularity_days=3))
    frame = train.interactions
    origin = int(frame["timestamp"].min())  # time buckets are whole days counted from the first interaction
    for item, time in ((3, 20 * DAY), (50, 40 * DAY), (90, 5 * DAY)):
        stamps = frame.loc[frame["item"] == item, "timestamp"].to_numpy()
        bucket, end = (stamps - origin) // DAY, (time - origin) // DAY
        expected = int(((bucket <= end) & (bucket > end - 3)).sum())
        assert dynamics.popularity_before(np.array([time]), np.array([[item]]))[0, 0] == expected


def test_fitting_reads_only_what_it_is_given(world):
    split, train, preferences = world
    planted = split.valid.copy()
    planted["item"] = (planted["item"] + 1) % train.n_items  # another next item: the fit must change
    a, _ = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    b, _ = fit_dynamics(train, planted, preferences, DynamicsConfig(negatives=20))
    assert a.weights != b.weights
    c, _ = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    assert a.weights == c.weights and a.intercept == c.intercept  # seeded


def test_a_simulated_users_interest_moves_with_what_it_watches(world):
    """Statistical users carry their dynamics: a watch in the simulation raises the chain neighbour's watch probability."""
    from recarena.agents.contract import SessionContext
    from recarena.agents.kit import build_user_kit

    split, train, _ = world
    kit = build_user_kit(train, seed=0, validation=split.valid, dynamics_config=DynamicsConfig(negatives=20),
                         preference_config=PreferenceConfig(epochs=30, seed=0))
    assert kit.dynamics_report is not None and kit.behaviour.dynamics.weights.get("recent_cooc", 0) > 0
    user = 0
    seen = kit.preferences.seen[user]
    chain = next(c for c in range(CHAINS) if not any(c * CHAIN_LENGTH + k in seen for k in range(CHAIN_LENGTH)))
    watched, neighbour = chain * CHAIN_LENGTH + 2, chain * CHAIN_LENGTH + 3
    fresh = kit.statistical_user(user, np.random.default_rng(0))
    moved = kit.statistical_user(user, np.random.default_rng(0))
    moved.start_session(SessionContext())
    moved.record_page([watched], np.array([True]), np.array([4]), False)
    assert moved.watch_probabilities([neighbour])[0] > 1.5 * fresh.watch_probabilities([neighbour])[0]
    restored = kit.statistical_user(user, np.random.default_rng(0))
    restored.set_state(moved.get_state())  # a snapshot keeps what moved the interest
    assert restored.watch_probabilities([neighbour])[0] == moved.watch_probabilities([neighbour])[0]


def test_without_validation_the_users_are_static(world):
    from recarena.agents.kit import build_user_kit

    _, train, preferences = world
    kit = build_user_kit(train, seed=0, preference_config=PreferenceConfig(epochs=30, seed=0))
    assert kit.dynamics_report is None and kit.behaviour.dynamics is None
    users, items = np.array([1, 2]), np.array([[0, 5, 9], [40, 41, 42]])
    np.testing.assert_allclose(kit.behaviour.interest_logits(users, items), kit.preferences.watch_logits(users, items))


def test_carried_over_dynamics_keep_the_weights_on_the_new_tables(world):
    from recarena.agents.dynamics import carry_over

    split, train, preferences = world
    fitted, _ = fit_dynamics(train, split.valid, preferences, DynamicsConfig(negatives=20))
    everything = split.dataset.with_interactions(split.known_before("test"))
    carried = carry_over(fitted, everything, preferences)
    assert carried.weights == fitted.weights
    # The users' recent items now end with their validation item.
    last_valid = split.valid.sort_values("timestamp").groupby("user")["item"].last()
    assert (carried.start_recent[last_valid.index.to_numpy(), -1] == last_valid.to_numpy()).all()
    assert not (fitted.start_recent[last_valid.index.to_numpy(), -1] == last_valid.to_numpy()).any()


def test_recency_decay_weighs_the_newest_items_most(world):
    _, train, preferences = world
    dynamics = build_dynamics(train, preferences, DynamicsConfig(recency_decay=0.5))
    chain_a, chain_b = 0, 5
    item = np.array([[chain_a * CHAIN_LENGTH + 3]])
    taste = preferences.watch_logits(np.array([0]), item)
    newest_a = np.array([[chain_b * CHAIN_LENGTH + 2, chain_a * CHAIN_LENGTH + 2]])  # chain a's item is the newest
    oldest_a = newest_a[:, ::-1]
    values = lambda recent: dynamics.part_values(taste, item, recent, np.array([10 * DAY]))["recent_cooc"][0, 0]  # noqa: E731
    assert values(newest_a) > values(oldest_a)
    alike = build_dynamics(train, preferences, DynamicsConfig(recency_decay=1.0))
    alike_values = lambda recent: alike.part_values(taste, item, recent, np.array([10 * DAY]))["recent_cooc"][0, 0]  # noqa: E731
    assert alike_values(newest_a) == pytest.approx(alike_values(oldest_a))
