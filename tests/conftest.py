"""Shared fixtures. The whole session uses its own RECARENA_HOME, so tests never read or
write a person's cache, and fetch ml-100k (from the RecBole wheel) once.

Optional pieces (llama.cpp, Ray, Chromium, the tuning and RL extras) are asked for in one way, so that `make test` fails where they
are missing instead of skipping: ``pytestmark = pytest.mark.requires("ray")`` (or on one test), or the
``require`` fixture inside a test or fixture (``require("chromium")``). Either skips when the piece is
missing, unless its ``RECARENA_REQUIRE_*`` variable (see REQUIREMENTS; the Makefile's test target sets
them all) is set: then the test fails."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from typing import Callable

import pytest

_HOME = tempfile.mkdtemp(prefix="recarena_test_home_")


def _chromium_present() -> bool:
    from recarena.scenarios.checker import chromium_path

    return chromium_path() is not None


def _module_present(module: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(module) is not None


REQUIREMENTS: dict[str, tuple[str, str, Callable[[], bool]]] = {
    # name: (the variable that makes it required, what to do about it, whether it is here)
    "llama_cpp": ("RECARENA_REQUIRE_LLAMA", "llama-cpp-python is not installed (pip install 'recarena[llm]')", _module_present("llama_cpp")),
    "ray": ("RECARENA_REQUIRE_RAY", "the Ray backend is an optional extra: pip install 'recarena[ray]'", _module_present("ray")),
    "chromium": ("RECARENA_REQUIRE_CHROMIUM", "chromium is not installed; `make test` installs Debian's package", _chromium_present),
    "tune": ("RECARENA_REQUIRE_TUNE", "LoRA tuning is an optional extra: pip install 'recarena[tune]' (peft, gguf)",
             lambda: all(importlib.util.find_spec(m) is not None for m in ("peft", "gguf", "transformers"))),
    "rl": ("RECARENA_REQUIRE_RL", "Stable-Baselines3 is an optional extra: pip install 'recarena[rl]'", _module_present("stable_baselines3")),
}


def require_or_skip(name: str, env_var: str, reason: str, present: Callable[[], bool] | None = None) -> None:
    """Skip the calling test when `name` (a module, unless `present` says otherwise) is missing; fail instead
    when `env_var` is set (to anything but empty or 0)."""
    if (present or _module_present(name))():
        return
    if os.environ.get(env_var, "") not in ("", "0"):
        pytest.fail(f"{name} is required ({env_var} is set) but missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require(name: str) -> None:
    """`require_or_skip` for one of REQUIREMENTS."""
    env_var, reason, present = REQUIREMENTS[name]
    require_or_skip(name, env_var, reason, present)


def pytest_configure(config: pytest.Config) -> None:
    os.environ["RECARENA_HOME"] = _HOME
    config.addinivalue_line("markers", "requires(name): needs an optional piece (llama_cpp, ray, chromium, tune, rl); see tests/conftest.py")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            require(name)


@pytest.fixture(name="require", scope="session")
def require_fixture() -> Callable[[str], None]:
    """`require(name)`: skip, or fail under its RECARENA_REQUIRE_* variable, when `name` is missing."""
    return require


@pytest.fixture(scope="session")
def ml100k():
    """The real MovieLens-100K, as recarena loads it."""
    from recarena.simulator.data import load_dataset

    return load_dataset("ml-100k")


@pytest.fixture(scope="session")
def small_synthetic():
    """A small synthetic dataset with known ground truth (in `.extra["truth"]`)."""
    from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

    return generate_synthetic(SyntheticConfig(n_users=300, n_items=120, mean_interactions=20, seed=7))
