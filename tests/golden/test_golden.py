"""Behaviour is unchanged by moving code: an A/B run, its A/A self-check, a population (the
feedback loop) and a fidelity run give the same events and figures, on a fixed seed, as the
runs recorded in golden.json (see runs.py; rewrite it only for an intended change of behaviour)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("golden_runs", HERE / "runs.py")
runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runs)  # type: ignore[union-attr]

GOLDEN = json.loads((HERE / "golden.json").read_text())


def _differences(expected, got, path=""):
    """Paths where `got` differs from `expected` (a readable failure instead of one huge diff)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: missing" for k in expected.keys() - got.keys()] + [f"{path}.{k}: new" for k in got.keys() - expected.keys()]
        for key in expected.keys() & got.keys():
            out += _differences(expected[key], got[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (e, g) in enumerate(zip(expected, got)) for d in _differences(e, g, f"{path}[{i}]")]
    return [] if expected == got else [f"{path}: {expected!r} -> {got!r}"]


@pytest.mark.parametrize("name", sorted(runs.RUNS))
def test_run_matches_the_recorded_events_and_figures(ml100k, tmp_path, name):
    got = runs.RUNS[name](tmp_path / name)
    differences = _differences(GOLDEN[name], runs.rounded(got))
    assert not differences, "\n".join(differences[:20])


def test_the_digest_sees_a_changed_event():
    import pandas as pd

    frame = pd.DataFrame({"item": [1, 2], "watched": [True, False], "shown_at": [1.0, 2.0]})
    changed = frame.assign(watched=[True, True])
    later = frame.assign(shown_at=[5.0, 6.0])
    assert runs.frame_digest(frame) != runs.frame_digest(changed)
    assert runs.frame_digest(frame) == runs.frame_digest(later)  # wall-clock times are not behaviour
