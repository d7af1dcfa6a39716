"""The filter bubble shows: a recommender that keeps learning from its own users narrows what they see.

A seeded synthetic world whose users each favour one or two genres (the ground truth of
`recarena.simulator.data.synthetic`), every user active every round. ItemKNN recommends from
the user's history, so what a user watched in the loop feeds straight into the next round;
the frozen arms (never updated) are the no-loop controls and the MMR arms the exploration arms.
Users consume their favourite items round after round, which by itself changes what the next
rounds show, so the loop's effect is measured against the frozen arm with the same slate policy.
"""

from __future__ import annotations

import pytest

from recarena.agents.kit import build_user_kit
from recarena.agents.preferences import PreferenceConfig
from recarena.recommenders import build_recommender
from recarena.scenarios.ab.scenario import World
from recarena.scenarios.feedback_loop.scenario import FeedbackConfig, run_feedback_loop
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    data = generate_synthetic(SyntheticConfig(n_users=200, n_items=150, mean_interactions=20, seed=3))
    split = leave_one_out(data)
    train = split.train_dataset()
    kit = build_user_kit(train, seed=0, preference_config=PreferenceConfig(epochs=40, seed=0))
    model = build_recommender("itemknn", {"seed": 0, "progress": False}).fit(train)
    world = World(data, split, kit, {"itemknn": model})
    config = FeedbackConfig(arms="itemknn,itemknn+frozen,itemknn+mmr,itemknn+mmr+frozen", users=200, rounds=5, pages=3, activity=[1.0, 1.0, 1.0],
                            bootstrap=200, progress=False, html=False, out=tmp_path_factory.mktemp("bubble") / "run")  # fmt: skip
    return run_feedback_loop(config, world=world)["arms"]


def test_the_loop_narrows_against_the_frozen_control(loop):
    learning, frozen = loop["itemknn"], loop["itemknn+frozen"]
    assert learning["rounds"][0] == frozen["rounds"][0]  # same model, users and draws until the first update
    assert learning["last"]["top_genre_share"] > frozen["last"]["top_genre_share"] + 0.01
    assert learning["last"]["genres_shown"] < frozen["last"]["genres_shown"] - 0.2
    assert learning["change"]["top_genre_share"]["change"] > frozen["change"]["top_genre_share"]["change"]


def loop_effect(learning, frozen, figure):
    return learning["last"][figure] - frozen["last"][figure]


def test_mmr_exploration_slows_the_narrowing(loop):
    learning, mmr = loop["itemknn"], loop["itemknn+mmr"]
    assert mmr["first"]["top_genre_share"] < learning["first"]["top_genre_share"]  # more genres per slate from the start
    assert mmr["last"]["intra_list_diversity"] > learning["last"]["intra_list_diversity"]
    plain_effect = loop_effect(learning, loop["itemknn+frozen"], "top_genre_share")
    mmr_effect = loop_effect(mmr, loop["itemknn+mmr+frozen"], "top_genre_share")
    assert mmr_effect < plain_effect - 0.005
    assert loop_effect(mmr, loop["itemknn+mmr+frozen"], "genres_shown") > loop_effect(learning, loop["itemknn+frozen"], "genres_shown")
