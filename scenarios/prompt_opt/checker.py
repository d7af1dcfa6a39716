"""`check_optimizer`: the conformance check of the optimiser contract (contract.py), shipped with the package."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recarena.scenarios.prompt_opt.contract import Budget, OptimizationResult, Optimizer


def check_optimizer(make: Callable[[Path | None], Optimizer], initial: str, train: Sequence[Any], valid: Sequence[Any],
                    budget: Budget, log_path: Path) -> OptimizationResult:  # fmt: skip
    """Run an optimiser (built by ``make(log_path)``) and check the contract; returns its result.

    Checks: the initial prompt is the first candidate and is scored on validation; every rejected
    candidate says why; the chosen prompt is accepted and has the best mean validation score; the
    spend stays within the budget; the log holds a decision per candidate; and a second run on the
    same log replays it (no new work) to the same result.
    """
    result = make(log_path).optimize(initial, train, valid, budget)
    assert isinstance(result, OptimizationResult), f"optimize() returned {type(result).__name__}"
    first = result.candidates[0]
    assert first.text == initial and first.origin == "initial", "the initial prompt must be the first candidate"
    assert first.valid_scores is not None and len(first.valid_scores) == len(valid), "the initial prompt must be scored on every validation case"
    for c in result.candidates:
        assert c.accepted or c.reason, f"{c.prompt_id} was rejected without a reason"
        assert c.valid_scores is None or c.accepted, f"{c.prompt_id} was rejected but scored on validation"
    judged = [c for c in result.candidates if c.valid_scores]
    assert result.best.accepted and result.best in judged, "the chosen prompt must be an accepted, validated candidate"
    assert math.isclose(result.best.valid_mean, max(c.valid_mean for c in judged)), "the chosen prompt must have the best validation mean"
    spent = result.cost
    assert not budget.calls or spent.requests <= budget.calls, f"spent {spent.requests} requests over a budget of {budget.calls}"
    assert result.stopped in ("finished", "budget"), f"stopped={result.stopped!r}"
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    decided = {line["prompt_id"] for line in lines if line["key"].startswith("candidate:")}
    assert decided == {c.prompt_id for c in result.candidates}, "the log must hold one decision per candidate"
    again = make(log_path).optimize(initial, train, valid, budget)
    assert again.resumed_units > 0, "a rerun on the same log must replay it"
    assert again.as_dict() == result.as_dict(), "a rerun on the same log must give the same result (candidates, scores, spend)"
    return result
