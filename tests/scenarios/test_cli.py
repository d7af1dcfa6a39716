"""Smoke tests of the real `recarena` command, run as a person runs it (its errors through its entry point, in-process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECARENA = Path(sys.executable).with_name("recarena")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECARENA), *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=300)


def test_help_lists_the_subcommands():
    done = run("--help")
    assert done.returncode == 0
    for command in ("data", "evaluate"):
        assert command in done.stdout


def test_data_info_prints_ml100k_shape(ml100k):
    done = run("data", "info", "ml-100k")
    assert done.returncode == 0, done.stderr
    for needle in ("users          943", "items          1,682", "interactions   100,000", "6.3047%", "1997-09-20 .. 1998-04-22"):
        assert needle in done.stdout


def test_evaluate_reports_pop_beside_random_and_writes_json(ml100k, tmp_path):
    out = tmp_path / "runs" / "pop.json"
    done = run("evaluate", "--model", "pop", "--k", "10", "20", "--sampled", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "pop" in done.stdout and "random" in done.stdout
    report = json.loads(out.read_text())
    pop, random = report["models"]["pop"], report["models"]["random"]
    assert pop["full"]["ndcg@10"] > random["full"]["ndcg@10"]
    assert set(pop["sampled"]) == {f"{m}@{k}" for m in ("hr", "recall", "ndcg", "mrr") for k in (10, 20)}
    assert report["split"] == {"train": 98114, "valid": 943, "test": 943}


@pytest.mark.parametrize(
    "args, needle",
    [
        (("data", "info", "/no/such/folder"), "/no/such/folder: no such folder"),
        (("evaluate", "--dataset", "/no/such/folder"), "/no/such/folder: no such folder"),
        (("evaluate", "--model", "bpr", "--model-params", "dimm=3"), "dimm"),
    ],
)
def test_user_errors_are_one_line_with_status_2(args, needle, cli):
    done = cli(*args)
    assert done.returncode == 2
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_wrong_option_is_refused_by_name(cli):
    done = cli("evaluate", "--modle", "pop")
    assert done.returncode == 2 and "--modle" in done.stderr
