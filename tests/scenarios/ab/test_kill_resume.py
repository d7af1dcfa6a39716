"""`recarena ab` killed with SIGKILL mid-way and run again simulates only the missing sessions, and ends with
exactly the events and figures of an uninterrupted run (local backend, statistical users, a tiny synthetic world)."""

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

import pandas as pd

import recarena.simulator.session_engine as engine
from recarena.scenarios.cli import main
from recarena.simulator.events import WALL_CLOCK_COLUMNS, EventStore

WORKER = Path(__file__).with_name("ab_resume_worker.py")
ARGS = ["--users", "60", "--pages", "3", "--arms", "pop,random", "--no-progress", "--no-html", "--bootstrap", "100"]
TOTAL = 120  # 60 paired users x 2 arms


def _worker():
    spec = importlib.util.spec_from_file_location("ab_resume_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored(run_dir: Path) -> set[tuple[str, int]]:
    path = run_dir / "events.sqlite"
    if not path.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
            return {(a, int(u)) for a, u in c.execute("SELECT arm, user FROM sessions")}
    except sqlite3.OperationalError:  # tables not created yet
        return set()


def logged(log: Path) -> list[tuple[str, int]]:
    return [(a, int(u)) for a, _, u in (line.split() for line in log.read_text().splitlines())] if log.exists() else []


def events(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with EventStore(run_dir / "events.sqlite") as store:
        frames = store.impressions(), store.sessions()
    keys = (["arm", "user", "page", "position"], ["arm", "user"])
    return tuple(f.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in f.columns]).sort_values(k).reset_index(drop=True)
                 for f, k in zip(frames, keys))  # fmt: skip


def run_here(args: list[str], log: Path, monkeypatch) -> None:
    """The same command in this process (it has imported recarena already: cheaper than a second subprocess)."""
    with monkeypatch.context() as m:
        m.setattr(engine, "_finish", _worker().logging_finish(engine._finish, str(log)))
        assert main(args) == 0


def test_a_killed_ab_run_resumes_only_the_missing_sessions_and_ends_as_an_uninterrupted_one(tmp_path, small_synthetic, monkeypatch):
    from recarena.simulator.data.formats import write_atomic

    data = tmp_path / "data"
    write_atomic(small_synthetic, data, name="synthetic")
    args = lambda out: ["ab", "--dataset", str(data), "--out", str(out), *ARGS]  # noqa: E731

    run_here(args(tmp_path / "reference"), tmp_path / "reference.log", monkeypatch)
    assert len(logged(tmp_path / "reference.log")) == len(stored(tmp_path / "reference")) == TOTAL

    victim_dir, victim_log = tmp_path / "victim", tmp_path / "victim.log"
    victim = subprocess.Popen([sys.executable, str(WORKER), str(victim_log), "0.05", "--", *args(victim_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 240
    while len(stored(victim_dir)) < TOTAL // 4 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before it could be killed: " + (victim.stdout.read() if victim.stdout else "")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    before = stored(victim_dir)
    assert 0 < len(before) < TOTAL and set(logged(victim_log)) <= before

    rerun_log = tmp_path / "rerun.log"
    run_here(args(victim_dir), rerun_log, monkeypatch)
    again = logged(rerun_log)
    assert len(again) == len(set(again)) == TOTAL - len(before)  # only the missing sessions, each once
    assert not set(again) & before and set(again) | before == stored(victim_dir)

    for expected, actual in zip(events(tmp_path / "reference"), events(victim_dir)):
        pd.testing.assert_frame_equal(actual, expected)
    want, got = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "reference", victim_dir))
    assert got["run"]["resumed"] and not want["run"]["resumed"]
    assert got["comparisons"] == want["comparisons"]
