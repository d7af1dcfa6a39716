"""A run killed with SIGKILL mid-way and started again ends with exactly the events of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from recarena.simulator.events import WALL_CLOCK_COLUMNS, EventStore

WORKER = Path(__file__).with_name("resume_worker.py")


def start(run_dir: Path, slow: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(run_dir), str(slow)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stored_sessions(run_dir: Path) -> int:
    path = run_dir / "events.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def everything(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    store = EventStore(run_dir / "events.sqlite")
    drop = lambda f: f.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in f.columns])  # noqa: E731
    rounds = pd.read_sql_query("SELECT run, arm, round, figures FROM rounds ORDER BY round", store.connection)
    result = drop(store.impressions()), drop(store.sessions()), rounds
    store.close()
    return result


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    reference = start(tmp_path / "reference", 0.0)
    out, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0 and "DONE" in out, out

    victim_dir = tmp_path / "victim"
    victim = start(victim_dir, 0.01)
    total = len(everything(tmp_path / "reference")[1])
    deadline = time.time() + 240
    while stored_sessions(victim_dir) < total // 3 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    partial = stored_sessions(victim_dir)
    assert 0 < partial < total

    again = start(victim_dir, 0.0)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "DONE" in out, out

    want, got = everything(tmp_path / "reference"), everything(victim_dir)
    for expected, actual in zip(want, got):
        pd.testing.assert_frame_equal(actual, expected)
    assert not got[0].duplicated(["round", "user", "page", "position"]).any()
