"""The run directory: one run at a time (a lock naming its holder), data identified by content, no half-written files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from recarena.simulator.atomic import replaced_atomically, write_text_atomically
from recarena.simulator.data import Dataset
from recarena.simulator.rundir import OWNER_FILE, RunConfigMismatch, RunDirectory, RunDirectoryBusy, RunDirectoryError


def dataset(ratings=(5, 3, 4)) -> Dataset:
    interactions = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"], "rating": list(ratings), "timestamp": [1, 2, 3]})
    return Dataset.from_frames("tiny", interactions, pd.DataFrame({"raw_id": ["a", "b"], "genres": [["Drama"], []]}))


def test_a_second_run_on_the_directory_is_refused_at_once_naming_the_holder(tmp_path):
    with RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1):
        owner = json.loads((tmp_path / "run" / OWNER_FILE).read_text())
        assert owner["pid"] == os.getpid()
        started = time.perf_counter()
        with pytest.raises(RunDirectoryBusy, match=rf"in use by another run \(pid {os.getpid()} \(this process\)"):
            RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1)
        assert time.perf_counter() - started < 1.0  # refused, not waited for
    with RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1) as again:  # closed: free again
        assert again.resumed
    assert not (tmp_path / "run" / OWNER_FILE).exists()


def test_another_process_is_refused_while_the_lock_is_held(tmp_path):
    script = ("import sys; from recarena.simulator.rundir import RunDirectory, RunDirectoryBusy\n"
              "try:\n    RunDirectory(sys.argv[1], {'rounds': 3}, seed=1)\n"
              "except RunDirectoryBusy as error:\n    print(error); sys.exit(3)\n")  # fmt: skip
    with RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1) as held:
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
        assert done.returncode == 3, done.stderr
        assert f"pid {os.getpid()} on " in done.stdout and "choose another --out" in done.stdout
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_refused_run_leaves_the_lock_free(tmp_path):
    RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1).close()
    with pytest.raises(RunConfigMismatch, match=r"config\.rounds: stored 3, asked 4"):
        RunDirectory(tmp_path / "run", {"rounds": 4}, seed=1)
    RunDirectory(tmp_path / "run", {"rounds": 3}, seed=1).close()  # not busy: the refused one let go


def test_data_is_identified_by_content_not_by_path(tmp_path):
    config = {"dataset": "data/tiny", "rounds": 3}
    with RunDirectory(tmp_path / "run", config, seed=1, data=dataset()) as run:
        stored = json.loads((tmp_path / "run" / "run.json").read_text())
        assert stored["data"] == {"name": "tiny", "users": 2, "items": 2, "interactions": 3, "sha256": dataset().fingerprint()}
    with RunDirectory(tmp_path / "run", config | {"dataset": str(tmp_path / "data/tiny")}, seed=1, data=dataset()) as run:
        assert run.resumed  # the same data by another path
    with pytest.raises(RunConfigMismatch, match=r"holds another run \(data\.sha256: stored '[0-9a-f]{64}', asked '[0-9a-f]{64}'\)"):
        RunDirectory(tmp_path / "run", config, seed=1, data=dataset(ratings=(5, 3, 2)))
    with pytest.raises(RunConfigMismatch, match=r"config\.dataset"):  # without data, the path is all there is to compare
        RunDirectory(tmp_path / "run", config | {"dataset": "elsewhere"}, seed=1)


def test_the_fingerprint_follows_every_interaction_and_item():
    base = dataset().fingerprint()
    assert dataset().fingerprint() == base
    assert dataset(ratings=(5, 3, 5)).fingerprint() != base
    renamed = dataset()
    renamed.items = renamed.items.assign(text=["a; genres: Comedy", "b"])
    assert renamed.fingerprint() != base


def test_a_file_or_an_unreadable_run_json_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RunDirectoryError, match="file: is a file"):
        RunDirectory(tmp_path / "file", {}, seed=0)
    with pytest.raises(RunDirectoryError, match="cannot create the run directory"):
        RunDirectory(tmp_path / "file" / "run", {}, seed=0)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "run.json").write_text('{"config": {')
    with pytest.raises(RunDirectoryError, match="run.json: not readable JSON"):
        RunDirectory(tmp_path / "torn", {}, seed=0)
    RunDirectory(tmp_path / "fresh", {}, seed=0).close()  # and the failures held no lock anywhere


def test_an_atomic_write_is_all_or_nothing(tmp_path):
    target = tmp_path / "results.json"
    write_text_atomically(target, "old")
    with pytest.raises(RuntimeError):
        with replaced_atomically(target) as partial:
            partial.write_text("half of the ne")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    assert write_text_atomically(target, "new").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
