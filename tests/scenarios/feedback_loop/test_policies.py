"""What the feedback loop adds to the simulator: slate policies (MMR, epsilon-greedy), the filter-bubble figures,
and the population never re-showing what a user already watched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recarena.recommenders import build_recommender
from recarena.simulator.events import without_wall_clock
from recarena.simulator.exploration import SlatePolicy, epsilon_slots, genre_unit_vectors, mmr_rerank
from recarena.simulator.metrics import bubble_figures, group_genre_figures
from recarena.simulator.population import Population, PopulationConfig

# four items of genre 0, then one each of genres 1, 2, 3
GENRES = np.array([[1, 0, 0, 0]] * 4 + [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)


def test_mmr_keeps_the_ranking_without_weight_and_spreads_genres_with_it():
    items = np.array([[0, 1, 2, 3, 4, 5, 6]])
    scores = np.array([[7.0, 6, 5, 4, 3, 2, 1]])
    unit = genre_unit_vectors(GENRES)
    assert mmr_rerank(items, scores, 4, unit, 0.0).tolist() == [[0, 1, 2, 3]]
    diverse = mmr_rerank(items, scores, 4, unit, 0.5)[0].tolist()
    assert diverse[0] == 0 and sorted(diverse[1:]) == [4, 5, 6]  # the best item, then one of each other genre
    padded = mmr_rerank(np.array([[2, -1, -1]]), np.array([[1.0, -np.inf, -np.inf]]), 3, unit, 0.5)
    assert padded.tolist() == [[2, -1, -1]]


def test_epsilon_slots_explore_only_allowed_items_reproducibly():
    slate, excluded = [0, 1, 2, 3], np.array([4, 5])
    assert epsilon_slots(slate, excluded, 50, 0.0, np.random.default_rng(0)) == slate
    explored = epsilon_slots(slate, excluded, 50, 1.0, np.random.default_rng(1))
    assert len(set(explored)) == 4 and not set(explored) & ({4, 5} | set(slate))
    assert explored == epsilon_slots(slate, excluded, 50, 1.0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="epsilon"):
        SlatePolicy(epsilon=1.5).validate()


def test_genre_figures_per_group():
    figures = group_genre_figures(np.array([0, 0, 1, 1, 1, 1]), np.array([0, 1, 0, 4, 5, 6]), GENRES)
    assert figures["top_share"].tolist() == pytest.approx([1.0, 0.25])
    assert figures["genres"].tolist() == [1.0, 4.0]
    assert figures["diversity"].tolist() == pytest.approx([0.0, 1.0])
    frame = pd.DataFrame({"user": [7, 7, 7, 9, 9], "page": [0, 0, 1, 0, 0], "item": [0, 4, 5, 1, 2], "watched": [True, True, False, False, False]})
    bubble = bubble_figures(frame, GENRES)
    assert bubble["top_genre_share"] == pytest.approx((1 / 3 + 1.0) / 2) and bubble["genres_shown"] == pytest.approx(2.0)
    assert bubble["top_genre_share_watched"] == pytest.approx(0.5) and bubble["genres_watched"] == pytest.approx(2.0)


@pytest.fixture(scope="module")
def tiny_kit():
    from recarena.agents.kit import build_user_kit
    from recarena.agents.preferences import PreferenceConfig
    from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

    data = generate_synthetic(SyntheticConfig(n_users=60, n_items=80, mean_interactions=12, seed=5))
    return build_user_kit(data, seed=0, preference_config=PreferenceConfig(epochs=30, seed=0))


def play(kit, **overrides):
    config = PopulationConfig(**{"rounds": 3, "slate_size": 5, "max_pages": 3, "activity": (1.0, 1.0, 1.0), "progress": False, **overrides})
    population = Population(kit, build_recommender("pop").fit(kit.history), config, seed=2)
    population.run()
    frame = population.events.impressions()
    return without_wall_clock(frame)


def test_a_frozen_recommender_never_reshows_what_a_user_watched(tiny_kit):
    frame = play(tiny_kit, update_every=0)
    for (user, round_), rows in frame.groupby(["user", "round"]):
        earlier = frame[(frame["user"] == user) & (frame["round"] < round_) & frame["watched"]]["item"]
        assert not set(rows["item"]) & set(earlier)
    assert frame["watched"].any()


def test_exploring_populations_are_seeded_and_batch_independent(tiny_kit):
    explore = SlatePolicy(epsilon=0.3, mmr=0.4, pool=20)
    big, small = play(tiny_kit, explore=explore, batch_size=256), play(tiny_kit, explore=explore, batch_size=7)
    assert big.equals(small)
    plain = play(tiny_kit)
    assert big["item"].nunique() > plain["item"].nunique()  # exploration reaches more of the catalogue
