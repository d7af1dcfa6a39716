"""The golden runs: an A/B test, a population (the feedback loop) and a fidelity check at tiny
sizes on a fixed seed, reduced to what must never change when code moves: the events (as a
hash of every stored column except wall-clock times) and the figures (results.json without
timings).

`python tests/golden/runs.py` rewrites ``golden.json`` beside this file. Do that only when a
change of behaviour is intended and said so in its commit; `test_golden.py` compares against it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).with_name("golden.json")
# Wall-clock columns differ on every run; everything else in the store is behaviour.
WALL_CLOCK = {"shown_at", "reacted_at", "started_at", "ended_at", "completed_at"}


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of `frame`'s rows (wall-clock columns dropped, columns sorted, floats to 9 digits)."""
    frame = frame.drop(columns=[c for c in frame.columns if c in WALL_CLOCK]).reset_index(drop=True)
    frame = frame[sorted(frame.columns)]
    text = frame.to_csv(index=False, float_format="%.9g")
    return hashlib.sha256(text.encode()).hexdigest()


def rounded(value: Any) -> Any:
    """`value` with floats to 9 significant digits (so the comparison survives float printing)."""
    if isinstance(value, dict):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def store_digests(path: Path) -> dict[str, Any]:
    from recarena.simulator.events import EventStore

    with EventStore(path) as store:
        impressions, sessions = store.impressions(), store.sessions()
    return {"impressions": len(impressions), "sessions": len(sessions),
            "impressions_sha": frame_digest(impressions), "sessions_sha": frame_digest(sessions)}  # fmt: skip


def figures_of(results: dict[str, Any]) -> Any:
    from recarena.scenarios.contract import jsonable, timing_free

    return rounded(json.loads(json.dumps(jsonable(timing_free(results)))))


def ab_run(out: Path, user_model: str = "static") -> dict[str, Any]:
    from recarena.scenarios.registry import SCENARIOS

    scenario = SCENARIOS["ab"]
    config = scenario.config_type(arms="random,pop,itemknn", users=40, pages=3, slate_size=5, bootstrap=200, explore=0.2,
                                  explore_pool=20, quotes=2, seed=3, out=out, progress=False, html=False, user_model=user_model)  # fmt: skip
    results = scenario.run(config)
    figures = figures_of(results)
    figures.pop("config", None)  # the config's spelling may change with the code; the events and figures may not
    figures.pop("agreement", None)  # where the run directory's agreement check is (none here), not behaviour
    return {"events": store_digests(out / "events.sqlite"), "figures": figures}


def aa_run(out: Path, user_model: str = "static") -> dict[str, Any]:
    from recarena.scenarios.registry import SCENARIOS

    scenario = SCENARIOS["ab"]
    config = scenario.config_type(arms="pop", users=60, pages=3, slate_size=5, aa=True, aa_runs=3, seed=5, out=out, progress=False, html=False,
                                  user_model=user_model)  # fmt: skip
    results = scenario.run(config)
    return {"figures": figures_of({k: results[k] for k in ("false_positive_rate", "p_values")})}


def population_run(out: Path, user_model: str = "static") -> dict[str, Any]:
    from recarena.scenarios.registry import SCENARIOS

    scenario = SCENARIOS["feedback-loop"]
    config = scenario.config_type(arms="pop,itemknn+mmr,pop+epsilon,pop+frozen", users=40, rounds=2, pages=2, slate_size=5,
                                  bootstrap=100, seed=4, out=out, progress=False, html=False, user_model=user_model)  # fmt: skip
    results = scenario.run(config)
    events = {arm.name: store_digests(arm / "events.sqlite") for arm in sorted((out / "arms").iterdir())}
    figures = figures_of(results)
    figures.pop("config", None)
    return {"events": events, "figures": figures}


def fidelity_run(out: Path, user_model: str = "static") -> dict[str, Any]:
    from recarena.scenarios.registry import SCENARIOS

    scenario = SCENARIOS["fidelity"]
    config = scenario.config_type(user_kinds=["statistical"], users=40, ratios=[1, 3], sessions=1, pages=3, slate_size=5,
                                  persona_users=0, bootstrap=100, seed=6, out=out, progress=False, html=False, user_model=user_model)  # fmt: skip
    figures = figures_of(scenario.run(config))
    figures.pop("config", None)
    return {"figures": figures}


# The static runs were recorded before users had dynamics (and must not move: the static user is kept exactly);
# the dynamic runs pin the default users since they got dynamics (issue 18). The dynamic A/A check is left to
# tests/scenarios/ab/test_selfchecks.py, which asserts its false-positive rate (a golden copy cost 25-50 s).
RUNS = {"ab": ab_run, "aa": aa_run, "population": population_run, "fidelity": fidelity_run,
        "ab_dynamic": partial(ab_run, user_model="dynamic"), "population_dynamic": partial(population_run, user_model="dynamic"),
        "fidelity_dynamic": partial(fidelity_run, user_model="dynamic")}


def capture(names: list[str] | None = None) -> dict[str, Any]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(RUNS):
            out[name] = RUNS[name](Path(tmp) / name)
    return out


if __name__ == "__main__":
    np.seterr(all="ignore")
    captured = capture(sys.argv[1:] or None)
    previous = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    GOLDEN.write_text(json.dumps({**previous, **captured}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {', '.join(captured)}")
