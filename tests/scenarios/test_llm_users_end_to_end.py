"""The main job's own path: `recarena ab` and `recarena feedback-loop` with hybrid and LLM users on the real
embedded SmolLM2, at tiny sizes (two users, one page of two items). It covers `build_world`'s LLM branch: the
hybrid blend calibrated on validation items (that the test part never reaches it is tests/scenarios/ab/test_world.py's),
every decision asked of the model, and a rerun on a warm LLM cache giving the same events without a new call."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recarena.scenarios.cli import main
from recarena.simulator.events import EventStore, without_wall_clock

pytestmark = pytest.mark.requires("llama_cpp")

TINY = ["--users", "2", "--pages", "1", "--slate-size", "2", "--calibration-users", "1", "--llm", "embedded", "--threads", "1",
        "--no-progress", "--no-html", "--bootstrap", "100"]  # fmt: skip


@pytest.fixture(scope="module")
def world(small_synthetic, tmp_path_factory):
    """The synthetic dataset as a folder, and one LLM cache that every run here shares (the calibration's calls repeat)."""
    from recarena.simulator.data.formats import write_atomic

    root = tmp_path_factory.mktemp("llm-users")
    write_atomic(small_synthetic, root / "data", name="synthetic")
    return root


def run(world: Path, *args: str) -> dict:
    out = world / "-".join(a.strip("-") for a in args if not a.startswith("/"))[:80]
    assert main([*args, "--dataset", str(world / "data"), "--llm-cache", str(world / "cache.sqlite"), "--out", str(out), *TINY]) == 0
    return json.loads((out / "results.json").read_text()) | {"out": out}


def events(out: Path) -> list[pd.DataFrame]:
    frames = []
    for path in sorted(out.rglob("events.sqlite")):
        with EventStore(path) as store:
            for frame in (store.impressions(), store.sessions()):
                frames.append(without_wall_clock(frame, "llm_calls"))
    return frames


def test_an_ab_test_of_hybrid_users_calibrates_on_validation_asks_the_model_and_reruns_identically(world):
    results = run(world, "ab", "--user-kind", "hybrid", "--arms", "pop,random", "--quotes", "0")
    blend = results["blend"]
    assert blend["fitted_on"]["users"] == 1 and blend["fitted_on"]["watch_examples"] > 0 and not blend["llm_decides_leaving"]
    weights = [blend["watch_llm"], blend["watch_preference"], blend["watch_bias"], blend["rating_llm"], blend["rating_preference"]]
    assert max(abs(w) for w in weights) < 10 and blend["watch_preference"] > 0  # the prior keeps a tiny calibration sane
    for arm in ("pop", "random"):
        usage = results["arms"][arm]["llm"]
        assert usage["calls"] > 0 and usage["fallbacks"] == 0, usage
    with EventStore(results["out"] / "events.sqlite") as store:
        impressions, sessions = store.impressions(), store.sessions()
    assert sessions.groupby("arm")["user"].apply(sorted).tolist() == [sorted(results["users"])] * 2  # paired
    assert impressions["llm_calls"].notna().all()  # every page's decisions went to the model

    again = run(world, "ab", "--user-kind", "hybrid", "--arms", "pop,random", "--quotes", "0", "--seed", "0")  # another folder, the same run
    assert sum(again["arms"][arm]["llm"]["cache_misses"] for arm in ("pop", "random")) == 0  # every answer from the cache
    assert again["blend"] == blend
    for expected, actual in zip(events(results["out"]), events(again["out"]), strict=True):
        pd.testing.assert_frame_equal(actual, expected)


def test_a_feedback_loop_of_llm_users_runs_its_rounds_on_the_model(world):
    results = run(world, "feedback-loop", "--user-kind", "llm", "--arms", "pop", "--rounds", "2", "--activity", "1", "1", "1")
    assert results["blend"] is None  # LLM users are the model alone: nothing to calibrate
    arm = results["arms"]["pop"]
    assert len(arm["rounds"]) == 2 and arm["users_first_round"] == arm["users_last_round"] == 2
    assert arm["llm"]["calls"] > 0 and arm["llm"]["fallbacks"] == 0
    shown = pd.concat([f for f in events(results["out"]) if "position" in f.columns])
    assert sorted(shown["round"].unique()) == [0, 1] and len(shown) == 2 * 2 * 2  # 2 rounds x 2 users x one page of 2
