"""The event store and run directories: whole sessions per transaction, no duplicates, parquet, config checks."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from recarena.agents.contract import Interview, ItemReaction, PageReaction
from recarena.simulator.events import EventStore, PageRecord, SessionRecord
from recarena.simulator.rundir import RunConfigMismatch, RunDirectory


def session(round_=0, user=3, pages=2, arm="a"):
    records = []
    for p in range(pages):
        items = (ItemReaction(10 + p, True, 4, "I like Drama."), ItemReaction(20 + p, False, None, None))
        records.append(PageRecord(PageReaction(items, leave=p == pages - 1, feeling="pleased"), 100.0 + p, 100.5 + p, 1_000))
    return SessionRecord("r", arm, round_, user, 0, records, True, Interview(7, "liked", "missed"), {"had": [1, 2]})


def test_sessions_round_trip_as_frames_and_parquet(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    store.record_session(session(user=3))
    store.record_session(session(user=1, pages=1))
    frame = store.impressions()
    assert len(frame) == 6
    assert frame[["user", "page", "position"]].values.tolist() == [[1, 0, 0], [1, 0, 1], [3, 0, 0], [3, 0, 1], [3, 1, 0], [3, 1, 1]]
    row = frame.iloc[2]
    assert (row["item"], row["watched"], row["rating"], row["text"], row["feeling"]) == (10, True, 4, "I like Drama.", "pleased")
    assert pd.isna(frame.iloc[3]["rating"]) and frame.iloc[4]["sim_time"] == 1_000 + 60
    sessions = store.sessions()
    assert sessions[["user", "pages", "shown", "watched", "satisfaction", "liked"]].values.tolist() == [[1, 1, 2, 1, 7, "liked"], [3, 2, 4, 2, 7, "liked"]]
    assert store.latest_user_states("r", "a") == {1: (1, {"had": [1, 2]}), 3: (1, {"had": [1, 2]})}
    paths = store.to_parquet(tmp_path / "export")
    back = pd.read_parquet(paths["impressions"])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_duplicated_session_is_refused_and_leaves_nothing_half_written(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    store.record_session(session())
    with pytest.raises(sqlite3.IntegrityError):
        store.record_session(session())
    assert len(store.impressions()) == 4 and len(store.sessions()) == 1
    store.connection.execute("INSERT INTO sessions (run, arm, round, user, session, pages, shown, watched, left_site) VALUES ('r','a',0,5,0,0,0,0,0)")
    with pytest.raises(sqlite3.IntegrityError):
        store.record_session(session(user=5))  # its session row collides: the impressions must roll back too
    assert (store.impressions()["user"] == 5).sum() == 0
    assert store.completed_sessions("r", "a") == {(0, 3), (0, 5)}
    assert store.completed_sessions("r", "other") == set()


def test_run_directory_records_config_seed_versions_and_refuses_another_run(tmp_path):
    run = RunDirectory(tmp_path / "run", {"rounds": 3, "slate": [1, 2]}, seed=4)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["seed"] == 4 and meta["config"] == {"rounds": 3, "slate": [1, 2]}
    assert {"python", "numpy", "gymnasium", "mesa"} <= set(meta["versions"]) and not run.resumed
    run.close()
    again = RunDirectory(tmp_path / "run", {"rounds": 3, "slate": (1, 2)}, seed=4)
    assert again.resumed
    again.close()
    with pytest.raises(RunConfigMismatch, match=r"config\.rounds: stored 3, asked 4"):
        RunDirectory(tmp_path / "run", {"rounds": 4, "slate": [1, 2]}, seed=4)
    with pytest.raises(RunConfigMismatch, match="seed"):
        RunDirectory(tmp_path / "run", {"rounds": 3, "slate": [1, 2]}, seed=5)


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "events.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="events.sqlite: not a usable event store"):
        EventStore(bad)


def test_llm_call_ids_are_kept_per_impression(tmp_path):
    items = (ItemReaction(1, True, 5, None), ItemReaction(2, False, None, None))
    page = PageReaction(items, leave=True, feeling="pleased", llm_calls=("key-a", "key-b"))
    record = SessionRecord("r", "a", 0, 9, 0, [PageRecord(page, 1.0, 2.0, 1_000)], True, Interview(6), None)
    with EventStore(tmp_path / "events.sqlite") as store:
        store.record_session(record)
        store.record_session(session(user=1, pages=1))  # a statistical page: no LLM calls
        frame = store.impressions()
    llm_rows = frame[frame["user"] == 9]
    assert [json.loads(v) for v in llm_rows["llm_calls"]] == [["key-a", "key-b"]] * 2
    assert frame[frame["user"] == 1]["llm_calls"].isna().all()
