"""A recommender service as an A/B arm, end to end: the example service (examples/recommender_service.py) runs in a
subprocess on 127.0.0.1 and `recarena ab` meets it through the CLI.

* An A/B test of the served pop stores exactly the events of the same test with pop in-process, and its results
  give the served arm's calls and latency.
* Killing the service mid-run stops the run with one line and exit status 1 (no results); the service back on its
  port, the run resumes and ends with the events of the uninterrupted run.
* A service that does not answer at start, or a malformed arm, is one line and exit status 2, before anything is written."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from recarena.recommenders.service import HttpRecommender
from recarena.scenarios.cli import main
from recarena.scenarios.experiment import load_experiment
from recarena.simulator.events import EventStore, without_wall_clock

EXAMPLE = Path(__file__).parents[3] / "examples" / "recommender_service.py"
RECARENA = Path(sys.executable).with_name("recarena")
TINY = ["--users", "8", "--pages", "3", "--slate-size", "4", "--explore-pool", "12", "--bootstrap", "100", "--quotes", "0",
        "--no-html", "--no-progress", "--service-retries", "1"]  # fmt: skip


class Service:
    """The example service serving pop on `dataset` in a subprocess (``port`` 0: a free one)."""

    def __init__(self, dataset: Path, port: int = 0):
        self.process = subprocess.Popen([sys.executable, str(EXAMPLE), "--model", "pop", "--dataset", str(dataset), "--seed", "0",
                                         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=180)
        if not first or not first[0].startswith("serving pop at "):
            self.stop()
            pytest.fail(f"the example service did not start: {first} {self.process.stderr.read()[-2000:]}")
        self.url = first[0].split()[-1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def events(run: Path) -> dict[str, pd.DataFrame]:
    """The run's stored impressions and sessions without wall-clock times, the served arm labelled as its in-process model."""
    store = EventStore(run / "events.sqlite")
    out = {}
    for table in ("impressions", "sessions"):
        frame = without_wall_clock(getattr(store, table)()).replace({"arm": {"served": "pop"}})
        keys = ["arm", "user", "page", "position"] if table == "impressions" else ["arm", "user"]
        out[table] = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    store.close()
    return out


@pytest.fixture(scope="module")
def service(_tiny_grouplens_source):
    served = Service(_tiny_grouplens_source)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def runs(service, _tiny_grouplens_source, tmp_path_factory):
    """The same A/B test twice: the served pop as control against random (through the real `recarena` command), and pop in-process."""
    folder = tmp_path_factory.mktemp("served-ab")
    data = ["--dataset", str(_tiny_grouplens_source)]
    done = subprocess.run([str(RECARENA), "ab", *data, "--arms", f"served={service.url},random", *TINY, "--out", str(folder / "served")],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert main(["ab", *data, "--arms", "pop,random", *TINY, "--out", str(folder / "local")]) == 0
    (folder / "served" / "summary.txt").write_text(done.stdout)
    return folder / "served", folder / "local"


def test_a_served_model_and_the_same_model_in_process_store_identical_events(runs):
    served, local = runs
    a, b = events(served), events(local)
    assert len(a["impressions"]) > 0 and set(a["impressions"]["arm"]) == {"pop", "random"}
    for table in ("impressions", "sessions"):
        pd.testing.assert_frame_equal(a[table], b[table])
    results, baseline = (json.loads((run / "results.json").read_text()) for run in runs)
    assert results["ope"]["arms"] == baseline["ope"]["arms"]  # the control's propensities came from the service: all 1
    calls = results["arms"]["served"]["service"]
    assert calls["url"].startswith("http://127.0.0.1:") and calls["failures"] == 0 and calls["retries"] == 0
    assert calls["calls"] == a["sessions"].loc[a["sessions"]["arm"] == "pop", "pages"].sum()  # one call per page shown
    assert 0 < calls["latency_ms"]["p50"] <= calls["latency_ms"]["p95"] <= calls["latency_ms"]["max"]
    assert "service" not in results["arms"]["random"]
    summary = (served / "summary.txt").read_text()
    assert f"served served by {calls['url']}: {calls['calls']} calls, 0 failed, 0 retries; latency p50 " in summary


def test_killing_the_service_mid_run_stops_it_in_one_line_and_the_run_resumes_when_it_is_back(runs, _tiny_grouplens_source, tmp_path,
                                                                                             monkeypatch, capsys):  # fmt: skip
    service = Service(_tiny_grouplens_source)
    original, asked = HttpRecommender.recommend, []

    def recommend(self, *args, **kwargs):  # the service dies after the first pages were served
        asked.append(1)
        if len(asked) == 2:
            service.stop()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HttpRecommender, "recommend", recommend)
    out = tmp_path / "run"
    command = ["ab", "--dataset", str(_tiny_grouplens_source), "--arms", f"served={service.url},random", *TINY, "--out", str(out)]
    try:
        status = main(command)
        error = capsys.readouterr().err
        assert status == 1 and error.count("\n") == 1 and "Traceback" not in error
        assert error.startswith(f"recarena: error: the recommender service at {service.url} stopped answering after ")
        assert not (out / "results.json").exists()
        monkeypatch.setattr(HttpRecommender, "recommend", original)
        service = Service(_tiny_grouplens_source, port=service.port)  # back on its port: the run's settings still hold
        assert main(command) == 0
    finally:
        service.stop()
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["run"]["resumed"]
    finished, uninterrupted = events(out), events(runs[0])
    for table in ("impressions", "sessions"):
        pd.testing.assert_frame_equal(finished[table], uninterrupted[table])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("arm, needle", [
    ("http://127.0.0.1:FREE_PORT/recommend", "did not answer its start-up check (ConnectionRefusedError"),
    ("http://127.0.0.1:99999/x", "arms: service URL 'http://127.0.0.1:99999/x': the port is not a number"),
    ("pop=http://127.0.0.1:8000/x", "arms: the service name 'pop' is a model's name"),
])  # fmt: skip
def test_an_unreachable_or_malformed_service_arm_is_one_line_and_exit_2_before_anything_is_written(ml100k, tmp_path, capsys, arm, needle):
    arm = arm.replace("FREE_PORT", str(_free_port()))  # chosen when run, so parallel workers collect the same test ids
    status = main(["ab", "--arms", f"random,{arm}", "--users", "4", "--no-progress", "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and needle in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def test_a_yaml_experiment_names_a_served_arm(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(f"kind: ab\narms:\n  - pop\n  - served=http://127.0.0.1:8000/recommend?v=2\n  - http://10.0.0.1/rank\nout: {tmp_path / 'run'}\n")
    _, config = load_experiment(path)
    assert config.arm_labels() == ["pop", "served", "http://10.0.0.1/rank"]
    assert config.arm_models() == ["pop", "http://127.0.0.1:8000/recommend?v=2", "http://10.0.0.1/rank"]
    path.write_text(f"kind: ab\narms: [pop, served=http://127.0.0.1:8000/x]\nbackend: ray\nout: {tmp_path / 'run'}\n")
    with pytest.raises(Exception, match="backend: served arms run with --backend local"):
        load_experiment(path)
