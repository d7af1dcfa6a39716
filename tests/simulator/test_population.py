"""The Mesa population: seeded reproducibility, batching invariance, the feedback loop, per-round figures."""

from __future__ import annotations

import mesa
import numpy as np
import pytest

from recarena.recommenders import build_recommender
from recarena.simulator.events import without_wall_clock
from recarena.simulator.metrics import FIGURES, genre_diversity, gini
from recarena.simulator.population import Population, PopulationConfig


def play(kit, seed=0, **overrides):
    config = PopulationConfig(**{"rounds": 2, "slate_size": 5, "max_pages": 4, "progress": False, **overrides})
    population = Population(kit, build_recommender("pop").fit(kit.history), config, seed=seed)
    figures = population.run()
    return population, figures


def events_of(population):
    return without_wall_clock(population.events.impressions())


def test_seeded_runs_are_reproducible_and_seeds_differ(tiny_kit):
    a, fa = play(tiny_kit, seed=1)
    b, fb = play(tiny_kit, seed=1)
    c, _ = play(tiny_kit, seed=2)
    assert events_of(a).equals(events_of(b)) and fa.equals(fb)
    assert not events_of(a).equals(events_of(c))
    assert isinstance(a, mesa.Model) and len(a.agents) == tiny_kit.history.n_users


def test_batching_does_not_change_the_outcome(tiny_kit):
    big, _ = play(tiny_kit, seed=3, batch_size=256)
    small, _ = play(tiny_kit, seed=3, batch_size=7)
    assert events_of(big).equals(events_of(small))


def test_recommender_is_updated_between_rounds_on_what_it_observed(tiny_kit):
    population, _ = play(tiny_kit, seed=0, rounds=3)
    frame = population.events.impressions()
    watched = frame[frame["watched"]]
    rec = population.recommender
    assert len(rec.interactions) == tiny_kit.history.n_interactions + len(watched)
    # the round's watches reach the model with the simulated time of that round, after the real history
    added = rec.interactions.tail(len(watched))
    assert (added["timestamp"] > tiny_kit.history.interactions["timestamp"].max()).all()
    assert sorted(zip(added["user"], added["item"])) == sorted(zip(watched["user"], watched["item"]))
    frozen, _ = play(tiny_kit, seed=0, rounds=3, update_every=0)
    assert len(frozen.recommender.interactions) == tiny_kit.history.n_interactions
    # most-popular learns from the loop: what it shows drifts once the simulated watches count
    assert not events_of(population).equals(events_of(frozen))


def test_sessions_respect_the_limits_and_never_repeat_an_item(tiny_kit):
    population, figures = play(tiny_kit, seed=4, max_pages=3, slate_size=4)
    frame = population.events.impressions()
    assert frame["page"].max() <= 2 and frame["position"].max() <= 3
    per_session = frame.groupby(["round", "user"])["item"]
    assert (per_session.nunique() == per_session.size()).all()
    history = tiny_kit.history.interactions
    known = set(zip(history["user"], history["item"]))
    assert not any((u, i) in known for u, i in zip(frame["user"], frame["item"]))  # pop excludes what users had
    sessions = population.events.sessions()
    last_pages = frame.groupby(["round", "user"])["page"].max() + 1
    shown = sessions[sessions["pages"] > 0]  # 0 pages: the recommender had nothing left to show that user
    assert shown.set_index(["round", "user"])["pages"].equals(last_pages.rename("pages"))
    assert (shown["left_site"] | (shown["pages"] == 3)).all()


def test_activity_tiers_drive_who_comes_back(tiny_kit):
    population, _ = play(tiny_kit, seed=5, rounds=6, activity=(0.0, 0.0, 1.0))
    sessions = population.events.sessions()
    tiers = {a.user_id: a.tier for a in population.user_agents}
    high = {u for u, t in tiers.items() if t == 2}
    assert set(sessions["user"]) == high
    assert (sessions.groupby("user").size() == 6).all()


def test_datacollector_records_every_figure_per_round(tiny_kit):
    population, figures = play(tiny_kit, seed=6, rounds=3)
    assert list(figures.columns) == list(FIGURES) and len(figures) == 3
    frame = population.events.impressions()
    first = frame[frame["round"] == 0]
    assert figures.loc[0, "watch_rate"] == pytest.approx(first["watched"].mean())
    assert figures.loc[0, "impressions"] == len(first)
    assert figures.loc[0, "coverage"] == pytest.approx(first["item"].nunique() / tiny_kit.history.n_items)
    assert (figures["cumulative_coverage"].diff().dropna() >= 0).all()
    assert figures["exposure_gini"].between(0, 1).all() and figures["satisfaction"].between(1, 10).all()


def test_figure_helpers():
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(0.75)
    matrix = np.eye(4)
    assert genre_diversity(np.array([0, 1, 2, 3]), matrix) == pytest.approx(1.0)
    assert genre_diversity(np.array([2, 2]), matrix) == pytest.approx(0.0)


def test_ml100k_population_runs_rounds_with_updates(ml100k_full_kit):
    kit = ml100k_full_kit
    config = PopulationConfig(rounds=2, n_users=150, slate_size=10, max_pages=4, progress=False)
    population = Population(kit, build_recommender("pop").fit(kit.history), config, seed=0)
    figures = population.run()
    assert len(figures) == 2 and (figures["sessions"] > 0).all()
    watched = population.events.impressions()["watched"].sum()
    assert len(population.recommender.interactions) == kit.history.n_interactions + watched
    assert 0 < figures["watch_rate"].mean() < 1


def test_the_batched_path_gives_the_events_of_one_user_at_a_time(tiny_kit):
    """Statistical users go through show_pages' vectorised path; a subclass that declines the batch
    (no `batch_behaviour`) views its pages one by one (`view_page`). Same seed, same events: what resume
    and determinism rest on."""
    from recarena.agents.statistical import StatisticalUser

    class OneByOne(StatisticalUser):
        def batch_behaviour(self):
            return None

    kit = tiny_kit
    config = PopulationConfig(rounds=2, slate_size=5, max_pages=4, threads=1, progress=False)
    batched = Population(kit, build_recommender("pop").fit(kit.history), config, seed=9)
    single = Population(kit, build_recommender("pop").fit(kit.history), config, seed=9,
                        make_user=lambda u, rng: OneByOne(kit.profiles[u], kit.behaviour, rng, kit.item_genres))  # fmt: skip
    batched.run()
    single.run()
    assert events_of(batched).equals(events_of(single)) and len(events_of(batched)) > 100
    states = lambda p: {a.user_id: a.user.get_state() for a in p.user_agents}  # noqa: E731
    assert states(batched) == states(single)
