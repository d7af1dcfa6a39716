"""`recarena prompt-opt` end to end with the real embedded SmolLM2-135M on a tiny budget, from the command line."""

from __future__ import annotations

import json

import pytest
from recarena.scenarios.cli import main

pytestmark = pytest.mark.requires("llama_cpp")


def test_the_real_embedded_model_runs_the_loop_end_to_end_and_says_what_it_found(ml100k, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["prompt-opt", "--method", "recprompt", "--no-baselines", "--llm", "embedded", "--budget", "6",
            "--train-users", "2", "--valid-users", "2", "--test-users", "2", "--train-batch", "1", "--timeout-s", "300", "--retries", "0",
            "--no-online", "--no-progress", "--bootstrap", "100", "--llm-cache", str(tmp_path / "cache.sqlite"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    run = results["seeds"][0]["methods"]["recprompt"]
    assert run["cost"]["requests"] <= 6 and run["cost_by_role"]["ranker"]["requests"] >= 2
    assert run["cost_by_role"]["optimiser"]["requests"] == 1  # one step: 2 validation + 1 training case + 1 question + 2 validation
    assert run["cost"]["prompt_tokens"] > 0
    proposal = run["candidates"][1]
    assert proposal["accepted"] or proposal["reason"]  # judged with a reason, whatever a 135M model wrote
    log = [json.loads(line) for line in (out / "seed-0" / "recprompt.jsonl").read_text().splitlines()]
    assert log[0]["key"] == "header" and log[-1]["key"] == "end"
    assert results["verdict"] and results["verdict"][0] in printed
    if not results["seeds"][0]["methods"]["recprompt"]["changed"]:
        assert "no gain" in results["verdict"][0]  # honest about finding nothing
