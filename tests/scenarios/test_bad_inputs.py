"""Fail loudly, never invent: every bad input is refused through the CLI's entry in one line that names the file,
field or cause, with exit status 2, no traceback and nothing written; and the corrected command then runs (a
refused run never leaves a run.json that would block it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from recarena.scenarios.cli import main
from recarena.simulator.data import load_dataset
from recarena.simulator.data.formats import write_atomic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ab(data: Path, out: Path, *extra: str, arms: str = "pop,random") -> list[str]:
    return ["ab", "--dataset", str(data), "--users", "20", "--pages", "1", "--arms", arms, "--bootstrap", "100",
            "--no-html", "--no-progress", "--out", str(out), *extra]  # fmt: skip


def evaluate(data: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--dataset", str(data), "--model", "pop", "--no-progress", "--out", str(out), *extra]


def set_field(path: Path, line: int, column: int, value: str) -> None:
    """Field `column` of line `line` (1-based) of a tab-separated file becomes `value`."""
    lines = path.read_text(encoding="latin-1").splitlines()
    fields = lines[line - 1].split("\t")
    fields[column] = value
    lines[line - 1] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def experiment(path: Path, data: Path, out: Path) -> list[str]:
    """An A/B test in a YAML file (``users`` on line 3, nine lines); the command that runs it."""
    path.write_text(f"kind: ab\ndataset: {data}\nusers: 20\npages: 1\narms: pop,random\nbootstrap: 100\nhtml: false\n"
                    f"progress: false\nout: {out}\n")  # fmt: skip
    return ["run", str(path)]


@dataclass(frozen=True)
class Case:
    """One bad input: how it is made, the words its error must say, and the corrected command."""

    bad: Callable[[Path, Path], list[str]]
    """(data folder, runs folder) -> the command, after breaking whatever it breaks."""
    words: tuple[str, ...]
    fixed: Callable[[Path, Path], tuple[list[str], Path]]
    """(data folder, runs folder) -> the corrected command and the results file it writes, after repairing."""


def _atomic(data: Path) -> Path:
    """The data folder's RecBole atomic files (tiny.inter: a header, then one interaction a line)."""
    folder = data.with_name("atomic")
    if not folder.exists():
        write_atomic(load_dataset(data), folder, "tiny")
    return folder


def _rating(value: str, line: int = 7) -> Case:
    def bad(data: Path, runs: Path) -> list[str]:
        set_field(data / "u.data", line, 2, value)
        return ab(data, runs / "ab")

    def fixed(data: Path, runs: Path) -> tuple[list[str], Path]:
        set_field(data / "u.data", line, 2, "4")
        return ab(data, runs / "ab"), runs / "ab" / "results.json"

    return Case(bad, (f"u.data:{line}", "field 'rating'", f"'{value}'", "off the scale 1-5"), fixed)


def _inter_rating(value: str, line: int = 5) -> Case:
    def bad(data: Path, runs: Path) -> list[str]:
        set_field(_atomic(data) / "tiny.inter", line, 2, value)
        return ab(_atomic(data), runs / "ab")

    def fixed(data: Path, runs: Path) -> tuple[list[str], Path]:
        set_field(_atomic(data) / "tiny.inter", line, 2, "3")
        return ab(_atomic(data), runs / "ab"), runs / "ab" / "results.json"

    return Case(bad, (f"tiny.inter:{line}", "field 'rating'", f"'{value}'", "off the scale"), fixed)


def _untyped_header(data: Path, runs: Path) -> list[str]:
    inter = _atomic(data) / "tiny.inter"
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(["user_id\titem_id\trating\ttimestamp", *lines[1:]]) + "\n")
    return ab(_atomic(data), runs / "ab")


def _typed_header(data: Path, runs: Path) -> tuple[list[str], Path]:
    inter = _atomic(data) / "tiny.inter"
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(["user_id:token\titem_id:token\trating:float\ttimestamp:float", *lines[1:]]) + "\n")
    return ab(_atomic(data), runs / "ab"), runs / "ab" / "results.json"


def _yaml(change: Callable[[str], str]) -> Callable[[Path, Path], list[str]]:
    """A bad experiment file: the good one's text through `change`."""

    def bad(data: Path, runs: Path) -> list[str]:
        command = experiment(runs.parent / "exp.yaml", data, runs / "ab")
        (runs.parent / "exp.yaml").write_text(change((runs.parent / "exp.yaml").read_text()))
        return command

    return bad


def _good_yaml(data: Path, runs: Path) -> tuple[list[str], Path]:
    return experiment(runs.parent / "exp.yaml", data, runs / "ab"), runs / "ab" / "results.json"


def _taken_out(data: Path, runs: Path) -> list[str]:
    (runs / "taken").write_text("someone's notes")
    return ab(data, runs / "taken")


def _evaluate_into_folder(data: Path, runs: Path) -> list[str]:
    (runs / "scores").mkdir()
    return evaluate(data, runs / "scores")


CASES = {
    "negative model parameter": Case(
        lambda data, runs: ab(data, runs / "ab", "--model-params", "bpr.dim=-5", "bpr.epochs=2", arms="pop,bpr"),
        ("model_params", "'dim'", "-5"),
        lambda data, runs: (ab(data, runs / "ab", "--model-params", "bpr.dim=8", "bpr.epochs=2", arms="pop,bpr"), runs / "ab" / "results.json")),
    "out is an existing file": Case(_taken_out, ("out:", "taken is a file"),
                                    lambda data, runs: (ab(data, runs / "ab"), runs / "ab" / "results.json")),
    "evaluate out is a folder": Case(_evaluate_into_folder, ("out:", "scores is a folder", "one JSON file"),
                                     lambda data, runs: (evaluate(data, runs / "scores" / "pop.json"), runs / "scores" / "pop.json")),
    "evaluate k 0": Case(lambda data, runs: evaluate(data, runs / "pop.json", "--k", "0"), ("k:", "at least 1", "[0]"),
                         lambda data, runs: (evaluate(data, runs / "pop.json", "--k", "10"), runs / "pop.json")),
    "u.data rating -3": _rating("-3"),
    "u.data rating 7": _rating("7"),
    "inter rating 7": _inter_rating("7"),
    "inter rating -3": _inter_rating("-3"),
    "inter header without types": Case(_untyped_header, ("tiny.inter:1", "field 'user_id'", "has no type", "user_id:token"), _typed_header),
    "empty yaml": Case(_yaml(lambda text: ""), ("exp.yaml", "empty"), _good_yaml),
    "yaml fraction for a whole number": Case(_yaml(lambda text: text.replace("users: 20", "users: 10.7")),
                                             ("exp.yaml:3", "users", "whole number", "10.7"), _good_yaml),
    "yaml boolean for a number": Case(_yaml(lambda text: text.replace("users: 20", "users: true")), ("exp.yaml:3", "users", "True"), _good_yaml),
    "yaml duplicate key": Case(_yaml(lambda text: text + "users: 30\n"), ("exp.yaml:10", "users", "given twice", "line 3"), _good_yaml),
}  # fmt: skip


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_input_is_refused_in_one_line_and_the_corrected_rerun_runs(case, tiny_grouplens, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    command = case.bad(tiny_grouplens, runs)
    before = files_under(runs)
    capsys.readouterr()
    assert main(command) == 2  # an unexpected exception would escape here: a traceback
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1, error
    assert error.startswith("recarena: error: ") and all(word in error for word in case.words), error
    assert files_under(runs) == before, "a refused run wrote something"

    command, results = case.fixed(tiny_grouplens, runs)
    assert main(command) == 0, capsys.readouterr().err
    assert json.loads(results.read_text())


def test_more_users_than_the_data_has_warns_once_and_runs_them_all(tiny_grouplens, tmp_path, capsys):
    assert main(ab(tiny_grouplens, tmp_path / "ab", "--users", "500")) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert warnings == ["recarena: warning: users: 500 asked but dataset 'ml-100k' has 40; 40 will run"]
    assert len(json.loads((tmp_path / "ab" / "results.json").read_text())["users"]) == 40
