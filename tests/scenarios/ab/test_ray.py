"""The A/B test on Ray gives exactly the local run's events, and resumes a run the local backend started."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3

import pytest

from recarena.scenarios.ab.scenario import ABConfig, build_world, run_ab
from recarena.scenarios.contract import timing_free
from recarena.simulator.events import EventStore
from recarena.simulator.parallel import start_local_ray

pytestmark = pytest.mark.requires("ray")

EVENT_COLUMNS = ["arm", "user", "session", "page", "position", "item", "watched", "rating", "fallbacks"]


def events(out):
    with EventStore(out / "events.sqlite") as store:
        frame = store.impressions()
    return frame[EVENT_COLUMNS].sort_values(["arm", "user", "page", "position"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_and_ray(ml100k, tmp_path_factory):
    import ray

    root = tmp_path_factory.mktemp("ab-ray")
    config = ABConfig(arms="pop,itemknn", users=40, pages=3, slate_size=5, bootstrap=200, quotes=2, progress=False, html=False,
                      out=root / "local")  # fmt: skip
    world = build_world(config.world_spec())  # fitted once: both backends meet the same models and users' kit
    local = run_ab(config, world)
    start_local_ray(2)
    try:
        on_ray = run_ab(dataclasses.replace(config, backend="ray", workers=2, out=root / "ray"), world)
        # A local run killed half-way through the second arm, resumed on Ray.
        shutil.copytree(root / "local", root / "resumed")
        with sqlite3.connect(root / "resumed" / "events.sqlite") as db:
            for table in ("impressions", "sessions"):
                db.execute(f"DELETE FROM {table} WHERE arm = 'itemknn' AND user % 2 = 1")
        run_ab(dataclasses.replace(config, backend="ray", workers=2, out=root / "resumed"), world)
    finally:
        ray.shutdown()
    return config, local, on_ray, root


def test_ray_run_gives_the_local_events(local_and_ray):
    _, _, _, root = local_and_ray
    local, on_ray = events(root / "local"), events(root / "ray")
    assert len(local) > 200
    assert local.equals(on_ray)


def test_ray_run_gives_the_local_results(local_and_ray):
    _, local, on_ray, _ = local_and_ray
    assert timing_free(local)["arms"] == timing_free(on_ray)["arms"]
    assert [c["p_value"] for c in local["comparisons"]] == [c["p_value"] for c in on_ray["comparisons"]]
    assert [q["user"] for q in local["quotes"]] == [q["user"] for q in on_ray["quotes"]]


def test_a_local_run_cut_short_resumes_on_ray_to_the_same_events(local_and_ray):
    _, _, _, root = local_and_ray
    assert events(root / "resumed").equals(events(root / "local"))
