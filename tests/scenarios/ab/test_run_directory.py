"""An A/B test's run directory through the CLI's entry: one run at a time, data identified by content, files
written whole (statistical users on a 40-user GroupLens folder)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import recarena.simulator.atomic as atomic
from recarena.scenarios.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ab(data: Path | str, out: Path | str, *extra: str) -> list[str]:
    return ["ab", "--dataset", str(data), "--users", "20", "--pages", "1", "--arms", "pop,random", "--bootstrap", "100",
            "--no-progress", "--out", str(out), *extra]  # fmt: skip


def stored_sessions(out: Path) -> list[tuple]:
    if not (out / "events.sqlite").exists():
        return []
    with sqlite3.connect(f"file:{out / 'events.sqlite'}?mode=ro", uri=True, timeout=5) as connection:
        try:
            return connection.execute("SELECT arm, user FROM sessions").fetchall()
        except sqlite3.OperationalError:  # tables not made yet
            return []


def test_the_same_folder_by_another_path_resumes_and_edited_data_is_refused(tiny_grouplens, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    replaced = []
    real_replace = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda source, target: (replaced.append(Path(target).name), real_replace(source, target)))
    assert main(ab("tiny-data", "ab")) == 0, capsys.readouterr().err  # relative
    stored = json.loads((tmp_path / "ab" / "run.json").read_text())
    assert stored["data"]["sha256"] and stored["data"]["interactions"] > 0 and stored["config"]["dataset"] == "tiny-data"
    # Every finished file went through one atomic replace, and no partial file is left.
    assert {"run.json", "results.json", "report.html"} <= set(replaced)
    assert not [p for p in (tmp_path / "ab").iterdir() if p.name.endswith(".partial")]

    assert main(ab(tiny_grouplens.resolve(), "ab", "--no-html")) == 0, capsys.readouterr().err  # absolute: the same data
    assert json.loads((tmp_path / "ab" / "results.json").read_text())["run"]["resumed"]

    events = stored_sessions(tmp_path / "ab")
    lines = (tiny_grouplens / "u.data").read_text().splitlines()
    user, item, rating, timestamp = lines[6].split("\t")
    lines[6] = "\t".join([user, item, "1" if rating != "1" else "2", timestamp])  # one rating changed, still on the scale
    (tiny_grouplens / "u.data").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(ab("tiny-data", "ab", "--no-html")) == 2
    error = capsys.readouterr().err
    assert "holds another run (data.sha256: stored" in error and len(error.strip().splitlines()) == 1, error
    assert json.loads((tmp_path / "ab" / "run.json").read_text()) == stored and stored_sessions(tmp_path / "ab") == events


HOLDER = """
import sys, time
from recarena.simulator.events import EventStore
record = EventStore.record_session
def slowly(self, session):  # slow sessions: the run holds its directory long enough to be disturbed
    record(self, session)
    time.sleep(0.15)
EventStore.record_session = slowly
from recarena.scenarios.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_run_on_the_same_out_is_refused_at_once_naming_the_first(tiny_grouplens, tmp_path, capsys):
    out = tmp_path / "ab"
    command = ab(tiny_grouplens, out, "--no-html")
    first = subprocess.Popen([sys.executable, "-c", HOLDER, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=os.environ | {"OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.time() + 240
        while not stored_sessions(out) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, f"the first run ended before the second started: {first.communicate()}"
        run_json = (out / "run.json").read_text()

        started = time.perf_counter()
        assert main(command) == 2
        assert time.perf_counter() - started < 10  # refused at once, not after waiting or fitting
        error = capsys.readouterr().err
        assert f"{out}: in use by another run (pid {first.pid} on " in error and len(error.strip().splitlines()) == 1, error
        assert (out / "run.json").read_text() == run_json
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    sessions = stored_sessions(out)
    assert len(sessions) == 40 and len(set(sessions)) == 40  # the first run's events: every user in both arms, once

    assert main(command) == 0, capsys.readouterr().err  # the directory is free again: the rerun resumes it
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["resumed"] and stored_sessions(out) == sessions
