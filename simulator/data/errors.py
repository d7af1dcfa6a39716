"""The one error type for bad data, so a broken file fails in one readable line."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file is missing, empty or malformed.

    The message always names the file and, where one is known, the 1-based line
    of the file and the field, so a person can open the file and fix it.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = problem if field is None else f"field '{field}': {problem}"
        super().__init__(f"{where}: {what}")
