"""Plugins by entry points: a real distribution, built and pip-installed, adds a recommender and a user kind.

`tests/plugins/recarena_toy` declares ``toy-pop`` (``recarena.recommenders``, popularity with one validated
parameter of its own) and ``toy`` (``recarena.users``); `tests/plugins/recarena_broken` declares entry points
that fail to import, name a non-Recommender, claim a built-in's name, or name a value that is no maker. Both
are installed with pip into a temporary folder (never into the shared virtualenv): the CLI sees them through
PYTHONPATH in a subprocess, the in-process checks through ``sys.path``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recarena.agents.checker import check_user
from recarena.agents.kit import build_user_kit
from recarena.agents.preferences import PreferenceConfig
from recarena.agents.user_kinds import UserKindError, user_kind_names, user_kind_plugins
from recarena.recommenders import MostPopular, RecommenderError, build_recommender, check_recommender, recommender_names
from recarena.recommenders.registry import recommender_plugins
from recarena.simulator.data.formats import write_atomic

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# One interpreter runs every command (each start costs seconds): exit status, stdout and stderr of each, as JSON.
DRIVER = """
import contextlib, io, json, sys
from recarena.scenarios.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """Both plugin distributions built and installed by pip into a fresh folder (copied first: no build files in the tree)."""
    root = tmp_path_factory.mktemp("plugins")
    sources = [shutil.copytree(PLUGINS / name, root / "src" / name) for name in ("recarena_toy", "recarena_broken")]
    site = root / "site"
    # No build isolation (it would download setuptools) and no dependencies: the test venv has what they need.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), *map(str, sources)], check=True)  # fmt: skip
    assert (site / "recarena_toy-0.1.0.dist-info").is_dir() and (site / "recarena_broken-0.1.0.dist-info").is_dir()
    return site


@pytest.fixture()
def plugins_on_path(plugin_site, monkeypatch):
    """The installed plugins visible in this process, the registries reloaded; everything as it was afterwards."""
    monkeypatch.syspath_prepend(str(plugin_site))
    recommender_plugins.cache_clear()
    user_kind_plugins.cache_clear()
    yield plugin_site
    recommender_plugins.cache_clear()
    user_kind_plugins.cache_clear()
    for name in [m for m in sys.modules if m.split(".")[0] in ("recarena_toy", "recarena_broken")]:
        del sys.modules[name]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_plugins_join_the_registries_and_keep_their_contracts(plugins_on_path, small_synthetic):
    assert recommender_names()[-1] == "toy-pop" and "toy" in user_kind_names()
    assert "boom" not in recommender_names() and "not-callable" not in user_kind_names()
    model = build_recommender("toy-pop", {"smoothing": "2.5"})
    assert model.params.smoothing == 2.5 and type(model).__module__ == "recarena_toy.models"
    check_recommender(model, small_synthetic)
    with pytest.raises(RecommenderError, match="toy-pop: parameter 'smoothing'"):
        build_recommender("toy-pop", {"smoothing": 0})
    # Broken plugins: one line naming the distribution and the cause; built-ins unharmed, and a built-in's name stays its own.
    for name, cause in (("boom", "exploded on import"), ("not-a-model", "is not a Recommender subclass")):
        with pytest.raises(RecommenderError) as error:
            build_recommender(name)
        message = one_line(str(error.value))
        assert "'recarena-broken'" in message and cause in message
    assert type(build_recommender("pop")) is MostPopular
    assert "built-in" in recommender_plugins().broken["pop"].cause

    kit = build_user_kit(small_synthetic, seed=0, preference_config=PreferenceConfig(epochs=5, seed=0))
    make = kit.factory("toy")
    user = pickle.loads(pickle.dumps(make))(3, np.random.default_rng(0))  # makers travel to workers
    assert user.toy is True
    check_user(user, [list(range(10)), list(range(10, 20)), list(range(20, 30))])
    for kind, cause in (("boom-user", "exploded on import"), ("not-callable", "not callable")):
        with pytest.raises(UserKindError) as error:
            kit.factory(kind)
        message = one_line(str(error.value))
        assert "'recarena-broken'" in message and cause in message


def test_the_cli_lists_and_runs_an_installed_plugin(plugin_site, small_synthetic, tmp_path):
    data = tmp_path / "data"
    write_atomic(small_synthetic, data, name="toy")
    runs = tmp_path / "runs"
    commands = {
        "help": ["--help"],
        "evaluate help": ["evaluate", "--help"],
        "evaluate": ["evaluate", "--dataset", str(data), "--model", "toy-pop", "--model-params", "smoothing=2", "--no-progress",
                     "--out", str(runs / "toy.json")],
        "bad param": ["evaluate", "--dataset", str(data), "--model", "toy-pop", "--model-params", "smoothing=-1", "--no-progress"],
        "ab": ["ab", "--dataset", str(data), "--arms", "pop,toy-pop", "--user-kind", "toy", "--users", "20", "--pages", "1",
               "--bootstrap", "100", "--quotes", "0", "--no-html", "--no-progress", "--out", str(runs / "ab")],
        "broken model": ["evaluate", "--dataset", str(data), "--model", "boom", "--no-progress"],
        "broken arm": ["ab", "--dataset", str(data), "--arms", "pop,not-a-model", "--no-progress", "--out", str(runs / "ab2")],
        "broken kind": ["ab", "--dataset", str(data), "--arms", "pop,random", "--user-kind", "not-callable", "--out", str(runs / "ab3")],
        "built-in": ["evaluate", "--dataset", str(data), "--model", "pop", "--no-progress", "--out", str(runs / "pop.json")],
    }  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(list(commands.values()))], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = dict(zip(commands, json.loads(done.stdout.strip().splitlines()[-1])))

    assert result["help"]["code"] == 0 and "toy-pop (recarena-toy)" in result["help"]["out"]
    assert "toy (recarena-toy)" in result["help"]["out"] and "boom (recarena-broken)" in result["help"]["out"]
    assert result["evaluate help"]["code"] == 0 and "toy-pop" in result["evaluate help"]["out"]
    assert result["evaluate"]["code"] == 0, result["evaluate"]["err"]
    assert set(json.loads((runs / "toy.json").read_text())["models"]) == {"toy-pop", "random"}
    assert result["bad param"]["code"] == 2 and "'smoothing'" in one_line(result["bad param"]["err"])
    assert result["ab"]["code"] == 0, result["ab"]["err"]
    ab = json.loads((runs / "ab" / "results.json").read_text())
    assert ab["config"]["user_kind"] == "toy" and set(ab["arms"]) == {"pop", "toy-pop"}
    for name, cause in (("broken model", "exploded on import"), ("broken arm", "is not a Recommender subclass"),
                        ("broken kind", "not callable")):  # fmt: skip
        message = one_line(result[name]["err"])
        assert result[name]["code"] == 2 and message.startswith("recarena: error: ") and "'recarena-broken'" in message and cause in message
    assert result["built-in"]["code"] == 0 and (runs / "pop.json").exists()
