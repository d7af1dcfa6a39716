"""Scenario configs: the common options, one table of field kinds, and the CLI and YAML reading values alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest

from recarena.scenarios.cli import build_parser
from recarena.scenarios.config import CommonOptions, LLMOptions, ReportOptions, from_namespace, option_kind
from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.experiment import load_experiment
from recarena.scenarios.registry import SCENARIOS


@pytest.mark.parametrize("hint, shape, convert, optional", [
    (bool, "flag", bool, False),
    (Literal["t", "rank"], "choice", str, False),
    (list[int], "list", int, False),
    (Path | None, "value", Path, True),
    (int | None, "value", int, True),
    (float, "value", float, False),
])  # fmt: skip
def test_the_one_table_of_field_kinds(hint, shape, convert, optional):
    kind = option_kind(hint)
    assert (kind.shape, kind.convert, kind.optional) == (shape, convert, optional)


def test_every_scenario_inherits_the_common_options_and_overrides_defaults_only_by_redeclaring():
    for scenario in SCENARIOS.values():
        config = scenario.config_type()
        assert isinstance(config, CommonOptions) and config.dataset == "ml-100k" and config.seed == 0 and config.progress
        if isinstance(config, ReportOptions):
            assert config.html
    assert SCENARIOS["ab"].config_type().out == Path("runs/ab")
    assert SCENARIOS["prompt-bench"].config_type().llm_cache is None  # its own default
    assert isinstance(SCENARIOS["prompt-opt"].config_type(), LLMOptions)


@pytest.mark.parametrize("kind, flags, yaml_text", [
    ("ab", ["--arms", "pop,bpr", "--users", "30", "--design", "split", "--model-params", "bpr.dim=8", "bpr.epochs=2",
            "--llm-cache", "cache.sqlite", "--no-html", "--alpha", "0.1", "--seed", "4"],
     "arms: [pop, bpr]\nusers: 30\ndesign: split\nmodel_params: [bpr.dim=8, bpr.epochs=2]\nllm-cache: cache.sqlite\n"
     "html: false\nalpha: 0.1\nseed: 4\n"),
    ("fidelity", ["--user-kinds", "statistical", "--ratios", "1", "3", "--llm-threads", "2", "--out", "runs/f"],
     "user_kinds: statistical\nratios: [1, 3]\nllm_threads: 2\nout: runs/f\n"),
    ("evaluate", ["--model", "bpr", "--k", "5", "10", "--sampled", "--out", "runs/e.json"],
     "model: bpr\nk: [5, 10]\nsampled: true\nout: runs/e.json\n"),
])  # fmt: skip
def test_the_command_line_and_a_yaml_file_give_the_same_config(kind, flags, yaml_text, tmp_path):
    namespace = build_parser().parse_args([kind, *flags])
    from_flags = from_namespace(SCENARIOS[kind].config_type, namespace)
    path = tmp_path / "experiment.yaml"
    path.write_text(f"kind: {kind}\n{yaml_text}")
    name, from_yaml = load_experiment(path)
    assert name == kind and from_yaml == from_flags
    assert dataclasses.asdict(from_yaml) != dataclasses.asdict(SCENARIOS[kind].config_type())


@pytest.mark.parametrize("yaml_text, message", [
    ("design: crossover\n", "design: 'crossover' is not one of paired, split"),
    ("html: maybe\n", "html: expected true or false"),
    ("users: many\n", "users: expected int"),
    ("model_params: bpr.dim=8\nusers: 20\n", None),  # one value where a list goes: a list of one
    ("model_params: [bpr.dim=-5]\n", r"experiment.yaml:2: model_params: bpr: parameter 'dim'"),  # values checked before any run
])  # fmt: skip
def test_yaml_values_are_checked_by_the_field_kind(yaml_text, message, tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("kind: ab\n" + yaml_text)
    if message is None:
        assert load_experiment(path)[1].model_params == ["bpr.dim=8"]
        return
    with pytest.raises(ScenarioError, match=message):
        load_experiment(path)
