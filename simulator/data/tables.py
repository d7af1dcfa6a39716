"""Reading delimited text files with errors that name the file, line and field.

pandas' parsers report bad rows poorly (a non-numeric rating silently becomes a
float column of NaN, or a traceback deep in C code), so the loaders read text
through `read_table` and convert columns through `to_numbers`, which keep the
1-based line number of every row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError


@dataclass
class Table:
    """Rows of a text file as string columns, with the line each row came from."""

    path: Path
    columns: dict[str, list[str]]
    lines: np.ndarray  # 1-based line number of each row in the file

    def __len__(self) -> int:
        return len(self.lines)

    def require(self, *names: str) -> None:
        """DataError naming the first of `names` that the file lacks."""
        for name in names:
            if name not in self.columns:
                have = ", ".join(self.columns) or "none"
                raise DataError(self.path, f"missing column (columns present: {have})", field=name)

    def numbers(self, name: str, dtype: type = np.float64) -> np.ndarray:
        return to_numbers(self, name, dtype)


def read_table(
    path: str | Path,
    sep: str,
    names: list[str] | None = None,
    *,
    encoding: str = "utf-8",
    min_fields: int | None = None,
) -> Table:
    """Read `path`, split on `sep` (quoted CSV when `sep` is ``","``).

    With `names`, the file has no header and each line must have at least
    `min_fields` fields (default: all of them); without, the first line is the header.
    Blank lines are skipped. An empty file, or one with only a header, is a DataError.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    text = path.read_bytes().decode(encoding, errors="replace")
    if sep == ",":
        raw_rows = list(csv.reader(io.StringIO(text)))
    else:
        raw_rows = [line.split(sep) for line in text.splitlines()]
    numbered = [(i + 1, row) for i, row in enumerate(raw_rows) if row and any(cell.strip() for cell in row)]
    if names is None:
        if not numbered:
            raise DataError(path, "file is empty")
        names = [cell.strip() for cell in numbered[0][1]]
        numbered = numbered[1:]
    if not numbered:
        raise DataError(path, "file is empty (no data rows)")
    needed = len(names) if min_fields is None else min_fields
    for line, row in numbered:
        if len(row) < needed:
            raise DataError(path, f"expected {needed} fields separated by {sep!r}, found {len(row)}", line=line)
    columns = {
        name: [row[j].strip() if j < len(row) else "" for _, row in numbered] for j, name in enumerate(names)
    }
    return Table(path=path, columns=columns, lines=np.array([line for line, _ in numbered], dtype=np.int64))


def to_numbers(table: Table, name: str, dtype: type = np.float64) -> np.ndarray:
    """Column `name` as numbers; DataError at the first cell that is not one."""
    table.require(name)
    raw = pd.Series(table.columns[name], dtype="string")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(table.path, f"not a number: {table.columns[name][row]!r}", line=int(table.lines[row]), field=name)
    if np.issubdtype(dtype, np.integer):
        floats = values.to_numpy(dtype=np.float64)
        fractional = floats != np.floor(floats)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            raise DataError(table.path, f"not a whole number: {table.columns[name][row]!r}", line=int(table.lines[row]), field=name)
    return values.to_numpy(dtype=dtype)
