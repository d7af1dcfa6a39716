"""Datasets as a person hands them over: GroupLens ml-100k folders (u.data, u.item, u.user) written from ml-100k."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recarena.simulator.data import Dataset
from recarena.simulator.data.formats import _ML100K_GENRES


def write_grouplens_100k(dataset: Dataset, folder: Path) -> Path:
    """`dataset` in the GroupLens ml-100k release's files; `load_dataset(folder)` reads it back.

    Genres outside the release's 19 are dropped; "unknown" is written as the release writes it (a flag that
    the reader drops, which leaves items 267 and 1373 of ml-100k without genres)."""
    folder.mkdir(parents=True, exist_ok=True)
    users, items, inter = dataset.users, dataset.items, dataset.interactions
    pd.DataFrame({"user": users["raw_id"].to_numpy()[inter["user"]], "item": items["raw_id"].to_numpy()[inter["item"]],
                  "rating": inter["rating"].to_numpy().round().astype(int), "timestamp": inter["timestamp"]},
                 ).to_csv(folder / "u.data", sep="\t", header=False, index=False)  # fmt: skip
    rows = []
    for raw_id, title, year, genres in zip(items["raw_id"], items["title"], items["year"], items["genres"]):
        undated = pd.isna(year)
        flags = "|".join("1" if g in genres else "0" for g in _ML100K_GENRES)
        rows.append(f"{raw_id}|{title if undated else f'{title} ({year})'}|{'' if undated else f'01-Jan-{year}'}||http://x|{flags}")
    (folder / "u.item").write_text("\n".join(rows) + "\n", encoding="latin-1", errors="replace")
    demographics = ["" if pd.isna(v) else str(v) for c in ("age", "gender", "occupation", "zip_code") for v in users[c]]
    columns = np.array(demographics, dtype=object).reshape(4, -1)
    (folder / "u.user").write_text("".join(f"{r}|{a}|{g}|{o}|{z}\n" for r, a, g, o, z in zip(users["raw_id"], *columns)))
    return folder


@pytest.fixture(scope="session")
def grouplens_ml100k(ml100k, tmp_path_factory) -> Path:
    """The whole of ml-100k as a GroupLens folder (read-only: tests that edit files copy it)."""
    return write_grouplens_100k(ml100k, tmp_path_factory.mktemp("grouplens") / "ml-100k")


@pytest.fixture(scope="session")
def _tiny_grouplens_source(ml100k, tmp_path_factory) -> Path:
    # 40 users and the 120 items most of them watched: a world that builds in a second or two.
    inter = ml100k.interactions
    users = np.sort(inter["user"].unique())[:40]
    mine = inter[inter["user"].isin(users)]
    items = mine["item"].value_counts().index[:120]
    kept = mine[mine["item"].isin(items)]
    raw = kept.assign(user=ml100k.users["raw_id"].to_numpy()[kept["user"]], item=ml100k.items["raw_id"].to_numpy()[kept["item"]])
    catalogue = ml100k.items.iloc[np.sort(items)][["raw_id", "title", "year", "genres"]]
    people = ml100k.users.iloc[users].reset_index(drop=True)
    tiny = Dataset.from_frames("ml-100k", raw, catalogue.reset_index(drop=True), people)
    return write_grouplens_100k(tiny, tmp_path_factory.mktemp("tiny-grouplens") / "tiny")


@pytest.fixture
def tiny_grouplens(_tiny_grouplens_source, tmp_path) -> Path:
    """A GroupLens folder of 40 ml-100k users and 120 items, the test's own copy (edit it freely)."""
    return Path(shutil.copytree(_tiny_grouplens_source, tmp_path / "tiny-data"))


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: the tiny worlds here fit in a second, where two threads fighting a busy
    machine's cores take half a minute."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class CliResult:
    """What a `recarena` command gave: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_cli_in_process(*args: str) -> CliResult:
    """`recarena ARGS` through the command's own entry point (`recarena.scenarios.cli.main`), in this process.

    The same parser, handlers and one-line errors as the installed command, without its ten seconds of interpreter
    start-up and imports; each CLI test file still runs the real command once (its YAML run)."""
    from recarena.scenarios.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: --help (0) and unknown options (2)
            code = exit_.code if isinstance(exit_.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(name="cli")
def cli_fixture() -> Callable[..., CliResult]:
    """`cli("ab", "--help")`: `run_cli_in_process`."""
    return run_cli_in_process
