"""A population's figures and recommender updates from its in-memory round logs equal those read back from the store."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recarena.recommenders import build_recommender
from recarena.simulator.metrics import round_figures
from recarena.simulator.population import Population, PopulationConfig


class RecordingUpdates:
    """A recommender that keeps every update frame it is given."""

    def __init__(self, inner):
        self.inner, self.updates = inner, []
        self.name = inner.name

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def update(self, frame: pd.DataFrame):
        self.updates.append(frame.copy())
        return self.inner.update(frame)


def test_figures_and_updates_from_the_logs_equal_the_store(tiny_kit, tmp_path, monkeypatch):
    import recarena.simulator.population as population_module

    def no_read_back(*args, **kwargs):
        raise AssertionError("the round was read back from the store")

    recommender = RecordingUpdates(build_recommender("pop").fit(tiny_kit.history))
    config = PopulationConfig(rounds=4, slate_size=4, max_pages=3, update_every=2, progress=False)
    model = Population(tiny_kit, recommender, config, seed=3, run_dir=tmp_path / "run")
    with monkeypatch.context() as patch:
        patch.setattr(population_module, "round_figures", no_read_back)
        patch.setattr(model.events, "impressions", no_read_back)
        figures = model.run()
    assert len(figures) == 4 and figures["impressions"].gt(0).all()
    for r in range(4):
        want = round_figures(model.events, config.run, config.arm, r, tiny_kit.history)
        got = figures.iloc[r].to_dict()
        assert got.keys() == want.keys()
        assert all(got[k] == want[k] or (np.isnan(got[k]) and np.isnan(want[k])) for k in want), r
    assert len(recommender.updates) == 2
    for update, rounds in zip(recommender.updates, ([0, 1], [2, 3])):
        stored = model.events.impressions(config.run, config.arm, rounds)
        stored = stored[stored["watched"]]
        assert update["user"].tolist() == stored["user"].tolist()
        assert update["item"].tolist() == stored["item"].tolist()
        assert update["rating"].tolist() == stored["rating"].astype(np.float32).tolist()
        assert update["timestamp"].tolist() == stored["sim_time"].tolist()
    assert model.round_logs == {}  # nothing kept past the update that used it
