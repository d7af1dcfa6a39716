"""The distribution installs the four code folders under the `recarena` namespace, and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("simulator", "agents", "recommenders", "scenarios")


def declared_packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_subpackage_on_disk_is_declared():
    on_disk = {
        "recarena." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in CODE_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == set(declared_packages())


def test_the_wheel_holds_only_recarena_and_imports_from_where_it_is_unpacked(tmp_path):
    # Build from a copy, so setuptools' build/ folder never lands in the working tree.
    source = tmp_path / "source"
    for name in (*CODE_FOLDERS, "pyproject.toml", "README.md"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("recarena-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"recarena"}
    assert "recarena/simulator/data/dataset.py" in names and "recarena/scenarios/cli.py" in names
    probe = "import recarena.simulator.data, recarena.scenarios.cli, recarena.recommenders.evaluation as e; print(e.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path / "site"))


def test_editable_install_claims_no_generic_top_level_names(tmp_path):
    probe = (
        "import importlib.util as u, recarena.agents, recarena.simulator;"
        "print([n for n in ('agents', 'recommenders', 'simulator', 'scenarios') if u.find_spec(n)])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
