"""An A/B test with LLM users never reports fallbacks as answers: a dead endpoint stops it before it writes
anything, too many failures stop it mid-run, and a run that finished with some shows them per arm."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recarena.agents.llm import LLMError, factory
from recarena.agents.llm.scripted import ScriptedBackend
from recarena.scenarios import cli
from recarena.scenarios.ab.scenario import ABConfig, run_ab

RECARENA = Path(sys.executable).with_name("recarena")


class FlakyBackend(ScriptedBackend):
    """Scores like a model, but every `failing_every`-th request fails for good (no retry helps)."""

    def __init__(self, failing_every: int) -> None:
        super().__init__()
        self.failing_every = failing_every
        self._counter = itertools.count(1)
        self._count_lock = threading.Lock()

    def score_options(self, request, timeout_s):
        with self._count_lock:
            failing = next(self._counter) % self.failing_every == 0
        if failing:
            raise LLMError("injected fault")
        return super().score_options(request, timeout_s)


@pytest.fixture
def flaky(monkeypatch):
    """`--llm flaky:N`: a backend failing one request in N, registered like any other."""
    monkeypatch.setitem(factory.BACKENDS, "flaky", lambda argument, config: FlakyBackend(int(argument)))


def config(out: Path, llm: str, **settings) -> ABConfig:
    return ABConfig(arms="pop,random", users=4, pages=1, user_kind="llm", llm=llm, llm_cache=None, out=out, progress=False,
                    bootstrap=100, quotes=0, explore=0.0, **settings)  # fmt: skip


def test_a_dead_endpoint_exits_1_in_one_line_and_writes_nothing(ml100k, tmp_path):
    started = time.perf_counter()
    done = subprocess.run([str(RECARENA), "ab", "--user-kind", "llm", "--llm", "openai:foo@http://127.0.0.1:9/v1", "--users", "2",
                           "--pages", "1", "--arms", "pop,random", "--out", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=os.environ.copy(), timeout=120)  # fmt: skip
    assert time.perf_counter() - started < 60
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("recarena: error: the LLM at http://127.0.0.1:9/v1")
    assert not (tmp_path / "run").exists()  # not even a run directory


def test_too_many_fallbacks_stop_the_run_with_exit_1_and_no_results(ml100k, tmp_path, flaky, capsys):
    out = tmp_path / "run"
    status = cli.main(["ab", "--user-kind", "llm", "--llm", "flaky:2", "--users", "4", "--pages", "1", "--arms", "pop,random",
                       "--out", str(out), "--no-progress", "--quotes", "0", "--explore", "0", "--llm-cache", str(tmp_path / "cache.sqlite")])  # fmt: skip
    error = capsys.readouterr().err
    assert status == 1 and "Traceback" not in error
    assert error.strip().count("\n") == 0 and "max-llm-failure-rate 0.2" in error
    assert not (out / "results.json").exists() and not (out / "report.html").exists()


def test_a_run_with_tolerable_fallbacks_completes_and_shows_them_per_arm(ml100k, tmp_path, flaky):
    results = run_ab(config(tmp_path / "run", "flaky:6"))
    health = json.loads((tmp_path / "run" / "results.json").read_text())["llm_health"]
    assert health["max_failure_rate"] == 0.2 and set(health["by_arm"]) == {"pop", "random"}
    assert 0 < health["fallbacks"] < health["requests"]
    for arm in health["by_arm"].values():
        assert arm["requests"] > 0 and 0 < arm["fallback_rate"] <= 0.3
    page = (tmp_path / "run" / "report.html").read_text()
    banner = page[page.index("<h1>"):page.index("<h2>")]
    assert "LLM fallbacks" in banner and "pop " in banner and "random " in banner
    from recarena.scenarios.ab.scenario import ABScenario

    assert "warning: LLM fallbacks" in ABScenario().summary(results)


def test_the_limit_is_an_option(ml100k, tmp_path, flaky):
    health = run_ab(config(tmp_path / "run", "flaky:2", max_llm_failure_rate=1.0))["llm_health"]
    assert abs(health["fallbacks"] * 2 - health["requests"]) <= 1  # half of them, and the run went on
