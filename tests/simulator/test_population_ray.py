"""The population on Ray: the local run's events, figures and users, round after round of an updated recommender."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from recarena.agents.statistical import StatisticalUser
from recarena.recommenders import build_recommender
from recarena.simulator.events import WALL_CLOCK_COLUMNS, without_wall_clock
from recarena.simulator.exploration import SlatePolicy
from recarena.simulator.parallel import start_local_ray
from recarena.simulator.population import Population, PopulationConfig

# 3 rounds with an update after each, 7-user batches (several shards and batches a round), epsilon slots.
CONFIG = PopulationConfig(rounds=3, slate_size=5, max_pages=4, batch_size=7, update_every=1, progress=False, explore=SlatePolicy(epsilon=0.2))


def events(population):
    frame = population.events.impressions()
    return without_wall_clock(frame)


def play(kit, config, run_dir=None, rounds=None):
    population = Population(kit, build_recommender("pop").fit(kit.history), config, seed=7, run_dir=run_dir)
    figures = population.run(rounds)
    return population, figures


@pytest.fixture(scope="module")
def runs(tiny_kit, tmp_path_factory, require):
    require("ray")
    import ray
    root = tmp_path_factory.mktemp("population-ray")
    local = play(tiny_kit, CONFIG)
    # A local run stopped after 2 rounds, resumed on Ray.
    stopped, _ = play(tiny_kit, CONFIG, root / "resumed", rounds=2)
    stopped.close()
    start_local_ray(2)
    try:
        on_ray = play(tiny_kit, dataclasses.replace(CONFIG, backend="ray", workers=2))
        resumed = play(tiny_kit, dataclasses.replace(CONFIG, backend="ray", workers=2), root / "resumed")
    finally:
        ray.shutdown()
    return local, on_ray, resumed


def test_ray_gives_the_local_impressions(runs):
    (local, _), (on_ray, _), _ = runs
    frame = events(local)
    assert len(frame) > 300 and frame["round"].nunique() == 3
    assert frame.equals(events(on_ray))
    drop = list(WALL_CLOCK_COLUMNS)
    assert local.events.sessions().drop(columns=drop, errors="ignore").equals(on_ray.events.sessions().drop(columns=drop, errors="ignore"))


def test_ray_gives_the_local_figures_and_recommender(runs):
    (local, local_figures), (on_ray, ray_figures), _ = runs
    assert local_figures.equals(ray_figures)
    assert local.recommender.interactions.reset_index(drop=True).equals(on_ray.recommender.interactions.reset_index(drop=True))


def test_driver_agents_end_as_the_local_ones(runs):
    (local, _), (on_ray, _), _ = runs
    for a, b in zip(local.user_agents, on_ray.user_agents):
        sa, sb = a.user.get_state(), b.user.get_state()
        assert (a.sessions, sa["had"], sa["simulated_watches"]) == (b.sessions, sb["had"], sb["simulated_watches"])
        assert str(sa["rng"]) == str(sb["rng"])
    assert local.watched == on_ray.watched


def test_a_local_run_resumes_on_ray_to_the_same_events(runs):
    (local, local_figures), _, (resumed, resumed_figures) = runs
    assert events(resumed).equals(events(local))
    assert np.allclose(resumed_figures.to_numpy(float), local_figures.to_numpy(float), equal_nan=True)


class Wordy(StatisticalUser):
    """Stands in for an LLM user: a user decided one by one (no batch behaviour) stays in this process."""

    def batch_behaviour(self):
        return None


def test_ray_with_users_that_cannot_be_shipped_says_so(tiny_kit):
    def make(u, rng):
        return Wordy(tiny_kit.profiles[u], tiny_kit.behaviour, rng)

    with pytest.raises(ValueError, match="statistical users only.*backend='local'"):
        Population(tiny_kit, build_recommender("pop").fit(tiny_kit.history), dataclasses.replace(CONFIG, backend="ray"), make_user=make)
    with pytest.raises(ValueError, match="local, ray"):
        Population(tiny_kit, build_recommender("pop").fit(tiny_kit.history), dataclasses.replace(CONFIG, backend="dask"))
