"""Opening a run directory never runs its contents: users' snapshots are tagged JSON, models load with
``torch.load(weights_only=True)``; a planted pickle is refused in one line and its code never runs."""

from __future__ import annotations

import os
import pickle
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from recarena.agents.contract import SessionContext, SessionState
from recarena.recommenders import Recommender, RecommenderError, build_recommender
from recarena.simulator.events import EventStore, SessionRecord
from recarena.simulator.snapshots import UnsafeSnapshotError, decode_snapshot, encode_snapshot


class Planted:
    """Unpickling this runs ``os.system``: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_snapshot_round_trips_every_kind_of_value_it_holds():
    rng = np.random.default_rng(3)
    state = {"rng": rng.bit_generator.state, "session": SessionState(SessionContext(2, 1, 5, True), True, 3, [1, 2], [4, 5], [7]),
             "had": {3, 1}, "pair": (1, "a"), "vectors": rng.normal(size=(3, 4)).astype(np.float32), "scalar": np.float64(0.5),
             "by_id": {1: "x", (2, 3): None}, "nothing": None, "nan": float("nan")}  # fmt: skip
    back = decode_snapshot(encode_snapshot(state))
    assert back["rng"] == state["rng"] and back["session"] == state["session"] and back["had"] == {1, 3}
    assert back["pair"] == (1, "a") and back["by_id"] == {1: "x", (2, 3): None} and back["nothing"] is None
    assert back["vectors"].dtype == np.float32 and np.array_equal(back["vectors"], state["vectors"])
    assert type(back["scalar"]) is np.float64 and np.isnan(back["nan"])


def test_a_snapshot_that_holds_an_unknown_object_is_refused_when_taken():
    @dataclass
    class Unregistered:
        x: int

    with pytest.raises(TypeError, match="Unregistered"):
        encode_snapshot({"thing": Unregistered(1)})
    with pytest.raises(TypeError, match="Python objects"):
        encode_snapshot({"objects": np.array([object()])})


def test_a_planted_pickle_in_the_event_store_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "executed"
    with EventStore(tmp_path / "events.sqlite") as store:
        store.record_session(SessionRecord("ab", "pop", 0, 7, 0, [], True, None, user_state={"had": [1]}))
        assert store.latest_user_states("ab", "pop")[7][1] == {"had": [1]}
    with sqlite3.connect(tmp_path / "events.sqlite") as connection:
        connection.execute("UPDATE sessions SET user_state=?", (pickle.dumps(Planted(marker)),))
    with EventStore(tmp_path / "events.sqlite") as store, pytest.raises(UnsafeSnapshotError, match="a pickle") as caught:
        store.latest_user_states("ab", "pop")
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_a_planted_pickle_in_a_saved_model_is_refused_and_never_runs(ml100k, tmp_path):
    model = build_recommender("pop", {"seed": 0})
    model.fit(ml100k)
    folder = model.save(tmp_path / "model")
    assert Recommender.load(folder).name == "pop"  # a genuine save still loads
    marker = tmp_path / "executed"
    torch.save({"n_users": 1, "evil": Planted(marker)}, folder / "state.pt")
    with pytest.raises(RecommenderError, match="refused") as caught:
        Recommender.load(folder)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
