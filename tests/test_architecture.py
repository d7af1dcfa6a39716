"""The layers of docs/architecture.md hold: the import-linter contracts of pyproject.toml pass, and catch an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("simulator", "agents", "recommenders", "scenarios")
CONTRACTS = (
    "Experiments on top, the world below them, users and recommenders below the world\nand independent of each other",
    "The LLM layer imports nothing else of recarena.agents",
    "Data imports nothing else of recarena",
)


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the pyproject.toml in `where` (it reads `recarena` from there: cwd comes first on its path)."""
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())", "--no-cache"]
    return subprocess.run(command, cwd=where, capture_output=True, text=True, timeout=300)


def verdict(output: str, contract: str) -> str:
    """KEPT or BROKEN, as lint-imports reports `contract` (its long names wrap at 80 columns)."""
    flat = " ".join(output.split())
    name = " ".join(contract.split())
    for word in ("KEPT", "BROKEN"):
        if f"{name} {word}" in flat:
            return word
    raise AssertionError(f"contract {name!r} is not in the report:\n{output}")


def test_the_layer_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [verdict(done.stdout, c) for c in CONTRACTS] == ["KEPT"] * len(CONTRACTS)


def test_an_upward_import_breaks_its_contract(tmp_path):
    # The four folders laid out as the `recarena` package they install as, with three imports planted
    # that each go up a floor: data -> the CLI, the LLM layer -> a user's memory, a recommender -> a user.
    package = tmp_path / "recarena"
    for folder in CODE_FOLDERS:
        shutil.copytree(ROOT / folder, package / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    plants = {
        "simulator/data/splits.py": "import recarena.scenarios.cli",
        "agents/llm/cache.py": "import recarena.agents.memory",
        "recommenders/sampling.py": "import recarena.agents.contract",
    }
    for path, line in plants.items():
        target = package / path
        target.write_text(target.read_text() + f"\n{line}  # planted by the test\n")

    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert [verdict(done.stdout, c) for c in CONTRACTS] == ["BROKEN"] * len(CONTRACTS)
    flat = " ".join(done.stdout.split())
    assert "recarena.simulator.data.splits -> recarena.scenarios.cli" in flat
    assert "recarena.agents.llm.cache -> recarena.agents.memory" in flat
    assert "recarena.recommenders.sampling -> recarena.agents.contract" in flat
