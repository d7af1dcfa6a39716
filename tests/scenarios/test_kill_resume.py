"""A scenario killed with SIGKILL mid-way and run again simulates only the sessions it had not stored, and ends
with exactly the events and figures of an uninterrupted run: the A/B test and the feedback loop (local backend,
statistical users, a tiny synthetic world). The feedback loop's run is the population's (`recarena.simulator.population`):
its users' snapshots, figures and recommender updates restored from the store. The agreement check stores its
sessions through the A/B test's engine (it passes here too, as ``agreement --arms random,pop,itemknn``; left out to
keep the suite's time); `tune-llm`'s own kill test is in tests/scenarios/tune_llm."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recarena.scenarios.cli import main
from recarena.simulator.events import EventStore, without_wall_clock

WORKER = Path(__file__).with_name("kill_worker.py")
QUIET = ["--no-progress", "--no-html", "--bootstrap", "100"]
COMMANDS = {
    "ab": ["ab", "--users", "40", "--pages", "3", "--arms", "pop,random"],
    # Two arms of their own event stores, three rounds, the recommender updated after each.
    "feedback-loop": ["feedback-loop", "--users", "50", "--rounds", "3", "--pages", "2", "--arms", "pop,random"],
}
#: What differs between two runs of the same settings by design: wall-clock times, the run folder, whether it resumed.
UNREPEATABLE = {"run", "out", "directory", "seconds", "fit_seconds", "results_file", "report", "llm", "llm_total", "resumed"}
Session = tuple[str, str, int, int]


def _worker():
    spec = importlib.util.spec_from_file_location("kill_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stores(run_dir: Path) -> list[Path]:
    """Every event store of a run (the feedback loop keeps one per arm)."""
    return sorted(run_dir.rglob("events.sqlite"))


def stored(run_dir: Path) -> set[Session]:
    sessions: set[Session] = set()
    for path in stores(run_dir):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
                sessions |= {(r, a, int(n), int(u)) for r, a, n, u in c.execute("SELECT run, arm, round, user FROM sessions")}
        except sqlite3.OperationalError:  # tables not created yet
            pass
    return sessions


def logged(log: Path) -> list[Session]:
    return [(r, a, int(n), int(u)) for r, a, n, u in (line.split() for line in log.read_text().splitlines())] if log.exists() else []


def events(run_dir: Path) -> list[pd.DataFrame]:
    """Each store's impressions and sessions, without wall-clock columns, in a fixed order."""
    frames = []
    for path in stores(run_dir):
        with EventStore(path) as store:
            both = store.impressions(), store.sessions()
        for frame, keys in zip(both, (["run", "arm", "round", "user", "page", "position"], ["run", "arm", "round", "user"])):
            frame = without_wall_clock(frame)
            frames.append(frame.sort_values(keys).reset_index(drop=True))
    return frames


def repeatable(value: Any) -> Any:
    """`value` (results.json) without what differs between runs of the same settings by design."""
    if isinstance(value, dict):
        return {k: repeatable(v) for k, v in value.items() if k not in UNREPEATABLE}
    if isinstance(value, list):
        return [repeatable(v) for v in value]
    return value


def run_here(args: list[str], log: Path, monkeypatch) -> None:
    """The same command in this process (it has imported recarena already: cheaper than a second subprocess)."""
    with monkeypatch.context() as m:
        m.setattr(EventStore, "record_session", _worker().logging_record(EventStore.record_session, str(log)))
        assert main(args) == 0


@pytest.mark.parametrize("scenario", list(COMMANDS))
def test_a_killed_run_resumes_only_the_missing_sessions_and_ends_as_an_uninterrupted_one(scenario, tmp_path, small_synthetic, monkeypatch):
    from recarena.simulator.data.formats import write_atomic

    data = tmp_path / "data"
    write_atomic(small_synthetic, data, name="synthetic")
    args = lambda out: [*COMMANDS[scenario], "--dataset", str(data), "--out", str(out), *QUIET]  # noqa: E731

    run_here(args(tmp_path / "reference"), tmp_path / "reference.log", monkeypatch)
    total = len(stored(tmp_path / "reference"))
    assert total > 20 and len(logged(tmp_path / "reference.log")) == total

    victim_dir, victim_log = tmp_path / "victim", tmp_path / "victim.log"
    victim = subprocess.Popen([sys.executable, str(WORKER), str(victim_log), "0.05", "--", *args(victim_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 240
    while len(stored(victim_dir)) < total // 3 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before it could be killed: " + (victim.stdout.read() if victim.stdout else "")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    before = stored(victim_dir)
    assert 0 < len(before) < total and set(logged(victim_log)) <= before

    rerun_log = tmp_path / "rerun.log"
    run_here(args(victim_dir), rerun_log, monkeypatch)
    again = logged(rerun_log)
    assert len(again) == len(set(again)) == total - len(before)  # only the missing sessions, each once
    assert not set(again) & before and set(again) | before == stored(victim_dir)

    want_events, got_events = events(tmp_path / "reference"), events(victim_dir)
    assert len(want_events) == len(got_events) > 0
    for expected, actual in zip(want_events, got_events):
        pd.testing.assert_frame_equal(actual, expected)
    want, got = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "reference", victim_dir))
    assert repeatable(got) == repeatable(want)
