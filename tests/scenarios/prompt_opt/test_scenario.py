"""`recarena prompt-opt`: the scenario contract on ml-100k with a scripted LLM, the report, the CLI, bad input."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from recarena.agents.llm import LLM
from recarena.scenarios.checker import (
    check_config_type,
    check_report_renders,
    check_scenario,
    check_validation_names_field,
)
from recarena.scenarios.cli import main
from recarena.scenarios.prompt_opt.scenario import (
    PromptOptConfig,
    PromptOptScenario,
    run_prompt_opt,
)
from recarena.scenarios.prompt_opt.scripted import KnownRewardBackend, targets_of
from recarena.scenarios.registry import SCENARIOS


def known_targets(ml100k, config: PromptOptConfig) -> dict:
    """The scripted ranker 'knows' what each case's user took next (so prompts have known rewards)."""
    from recarena.scenarios.prompt_opt.evaluator import split_cases
    from recarena.simulator.data.splits import leave_one_out

    split = leave_one_out(ml100k)
    counts = {"train": config.train_users, "valid": config.valid_users, "test": config.test_users}
    targets = {}
    for seed in range(config.seed, config.seed + config.seeds):
        for cases in split_cases(split, config.protocol, counts, seed, config.history_len).values():
            targets.update(targets_of(cases))
    return targets


def tiny(out: Path, **overrides: Any) -> PromptOptConfig:
    values = dict(method="po4isr,recprompt", budget=60, train_users=12, valid_users=8, test_users=10, train_batch=3, pulls=3,
                  pull_batch=2, online_users=8, online_pages=1, bootstrap=200, seeds=2, out=out, llm_cache=None, progress=False)  # fmt: skip
    return PromptOptConfig(**{**values, **overrides})


class _ScriptedPromptOpt(PromptOptScenario):
    """The real scenario with the scripted known-reward LLM in place of the configured one."""

    def __init__(self, targets: dict) -> None:
        self.targets = targets

    def run(self, config: PromptOptConfig) -> dict[str, Any]:
        return run_prompt_opt(config, llm=LLM(KnownRewardBackend(self.targets, qualities=(0.9, 0.6, 0.3)), progress=False))


@pytest.fixture(scope="module")
def scripted_run(ml100k, tmp_path_factory):
    config = tiny(tmp_path_factory.mktemp("prompt_opt") / "run")
    scenario = _ScriptedPromptOpt(known_targets(ml100k, config))
    return check_scenario(scenario, config), config


def test_scenario_passes_the_checker_and_reruns_identically(scripted_run):
    results, config = scripted_run
    assert results["methods"] == ["po4isr", "recprompt", "initial", "best-of-n"]
    for seed in results["seeds"]:
        for name, run in seed["methods"].items():
            assert run["cost"]["requests"] <= config.budget, name
            assert (config.out / f"seed-{seed['seed']}" / f"{name}.jsonl").is_file()
    assert results["comparison"]["po4isr"]["changed_seeds"] >= 1  # better prompts exist and were found on validation
    assert results["verdict"] and all(isinstance(line, str) for line in results["verdict"])


def test_online_check_pits_the_final_prompt_against_the_initial_one(scripted_run):
    results, _ = scripted_run
    online = results["online"]
    assert "skipped" not in online, online
    assert set(online["arms"]) == {"llm-rerank", "llm-rerank#2"} and online["users"] == 8
    assert {c["arm"] for c in online["comparisons"]} == {"llm-rerank#2"}
    assert all(r["requests"] > 0 for r in online["llm_requests"].values())  # both arms really asked the LLM


def test_report_has_every_section_and_renders(scripted_run, tmp_path, require):
    results, _config = scripted_run
    page = Path(results["report"]).read_text()
    for heading in ("Verdict", "Validation score against LLM requests", "Test results", "Initial and final prompt",
                    "Candidates of po4isr", "Online check", "LLM usage"):  # fmt: skip
        assert f"<h2>{heading}" in page, heading
    assert "<ins" in page and "<del" in page  # the word diff of initial and final prompt
    assert "http://" not in page and "https://" not in page
    require("chromium")
    check_report_renders(results["report"], min_images=1)


def test_scenario_is_registered_with_a_documented_config(capsys):
    scenario = SCENARIOS["prompt-opt"]
    assert isinstance(scenario, PromptOptScenario) and scenario.name == "prompt-opt" and scenario.config_type is PromptOptConfig
    check_config_type(PromptOptConfig)  # a CommonOptions dataclass, every field with its help text, validate()
    with pytest.raises(SystemExit):
        main(["prompt-opt", "--help"])
    shown = capsys.readouterr().out
    for field in dataclasses.fields(PromptOptConfig):  # and every field reaches the command line with its help
        flag = "--" + field.name.replace("_", "-")
        assert flag in shown, flag
        assert " ".join(field.metadata["help"].split()[:3]) in " ".join(shown.split()), field.name


def test_validation_errors_name_the_field(tmp_path):
    check_validation_names_field(PromptOptConfig, "budget", 0)
    check_validation_names_field(PromptOptConfig, "method", "po4isr,opro")
    check_validation_names_field(PromptOptConfig, "template", tmp_path / "missing.txt")
    check_validation_names_field(PromptOptConfig, "valid_users", 0)
    bad = tmp_path / "no_candidates.txt"
    bad.write_text("Rank the movies for someone who watched {history}.")
    config = tiny(tmp_path / "x", template=bad)
    with pytest.raises(Exception, match=r"template: .*required placeholder \{candidates\} is missing"):
        run_prompt_opt(config, llm=LLM(KnownRewardBackend(set()), progress=False))


def test_cli_prints_one_line_errors_for_bad_input(capsys, tmp_path):
    assert main(["prompt-opt", "--method", "opro", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "recarena: error: method: unknown method 'opro'; known: po4isr, recprompt, best-of-n, initial"
    assert main(["prompt-opt", "--budget", "0", "--out", str(tmp_path / "x")]) == 2
    assert "budget: a budget of zero" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prompt-opt", "--help"])
    assert "--budget-tokens" in capsys.readouterr().out


def test_a_rerun_resumes_from_the_logs_of_a_finished_run(scripted_run, ml100k):
    results, config = scripted_run
    again = run_prompt_opt(dataclasses.replace(config, online=False, html=False),
                           llm=LLM(KnownRewardBackend(known_targets(ml100k, config), qualities=(0.9, 0.6, 0.3)), progress=False))  # fmt: skip
    assert all(run["resumed_units"] > 0 for seed in again["seeds"] for run in seed["methods"].values())
    assert again["comparison"] == results["comparison"]


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_its_logs(ml100k, tmp_path):
    from recarena.simulator.rundir import RunDirectoryBusy, RunLock

    config = tiny(tmp_path / "run", online=False, html=False, seeds=1)
    with RunLock(config.out):  # the first run, mid-way through its logs
        with pytest.raises(RunDirectoryBusy, match=rf"{tmp_path / 'run'}: in use by another run \(pid {os.getpid()}"):
            run_prompt_opt(config, llm=LLM(KnownRewardBackend(set()), progress=False))
    assert not list(config.out.glob("seed-*"))  # refused before it wrote a log line
