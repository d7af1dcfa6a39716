"""Files written whole or not at all: results.json, report.html, run.json.

A reader (a person refreshing report.html, a script polling results.json) or a run killed mid-write
must never see half a file. Every writer of a finished file writes a temporary file in the same
folder and moves it over the target with `os.replace`, which is atomic on one file system::

    write_text_atomically(out / "results.json", text)
    with replaced_atomically(out / "cases.csv") as partial:   # for writers that want a path
        frame.to_csv(partial, index=False)
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; leaving the block without an error moves it over `path`.

    On an error the temporary file is removed and `path` keeps its old content (or stays absent).
    The folder must exist (it is the caller's run folder)."""
    path = Path(path)
    # Same folder: os.replace is atomic only within one file system. Process and thread in the name: two
    # writers never share a temporary file.
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        yield partial
        with open(partial, "rb+") as written:
            os.fsync(written.fileno())  # the bytes are on disk before the name points at them
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` whole or not at all (see the module docstring); returns `path`."""
    path = Path(path)
    with replaced_atomically(path) as partial:
        partial.write_text(text, encoding=encoding)
    return path
