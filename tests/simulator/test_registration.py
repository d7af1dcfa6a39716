"""Registering the environments: on importing `recarena.simulator.env`, never on importing data, users or recommenders."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_data_users_and_recommenders_leaves_gymnasium_out():
    code = (
        "import sys, recarena.simulator, recarena.simulator.data, recarena.recommenders.models.bpr, recarena.agents.profile;"
        "print(sorted(m for m in sys.modules if m == 'gymnasium' or m.startswith('gymnasium.')))"
    )
    assert run_python(code) == "[]"


def test_importing_the_environment_module_registers_both_environments():
    code = (
        "import gymnasium;"
        "before = 'recarena/MovieLens100K-v0' in gymnasium.registry;"
        "import recarena.simulator.env;"
        "print(before, gymnasium.spec('recarena/MovieLens100K-v0').entry_point, gymnasium.spec('recarena/MovieLens100K-LLM-v0').nondeterministic)"
    )
    assert run_python(code) == "False recarena.simulator.registration:make_movielens100k True"
