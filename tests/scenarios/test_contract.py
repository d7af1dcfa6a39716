"""The scenario contract and its checker, on the A/B scenario and on scenarios built to break it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from recarena.scenarios.ab.scenario import ABConfig
from recarena.scenarios.checker import check_config_type, check_scenario, check_validation_names_field
from recarena.scenarios.config import CommonOptions, option
from recarena.scenarios.contract import Scenario, ScenarioError, write_results
from recarena.scenarios.registry import SCENARIOS, scenario_named


def test_every_registered_scenario_has_a_documented_config_with_the_common_options():
    assert {"ab", "evaluate"} <= set(SCENARIOS)
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name
        assert issubclass(scenario.config_type, CommonOptions)
        check_config_type(scenario.config_type)


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(ScenarioError, match="known: ab"):
        scenario_named("abx")


def test_ab_scenario_passes_the_checker(ml100k, tmp_path):
    config = ABConfig(arms="random,pop", users=20, pages=2, bootstrap=100, quotes=0, progress=False, html=False,
                      out=tmp_path / "ab")  # fmt: skip
    results = check_scenario(SCENARIOS["ab"], config)
    assert set(results["arms"]) == {"random", "pop"}


def test_ab_validation_errors_name_the_field():
    check_validation_names_field(ABConfig, "users", 1)
    check_validation_names_field(ABConfig, "alpha", 2.0)


@dataclasses.dataclass
class _CoinConfig(CommonOptions):
    """A toy scenario's options (for testing the checker only)."""

    flips: int = option(10, "coin flips")
    out: Path = option(Path("runs/coin"), "output folder")

    def validate(self) -> None:
        if self.flips < 1:
            raise ScenarioError(f"flips: must be at least 1, got {self.flips}")


class _SeededCoin(Scenario[_CoinConfig]):
    name, help, config_type = "coin", "flip coins", _CoinConfig

    def run(self, config: _CoinConfig) -> dict[str, Any]:
        import numpy as np

        config.validate()
        heads = int(np.random.default_rng(config.seed).integers(0, 2, config.flips).sum())
        results = {"heads": heads, "elapsed_s": 0.1}
        write_results(results, config.out)
        return results


class _UnseededCoin(_SeededCoin):
    def run(self, config: _CoinConfig) -> dict[str, Any]:
        import numpy as np

        results = {"heads": int(np.random.default_rng().integers(0, 2, 1000).sum())}
        write_results(results, config.out)
        return results


class _ForgetfulCoin(_SeededCoin):
    def run(self, config: _CoinConfig) -> dict[str, Any]:
        return {"heads": 1}


def test_checker_accepts_a_seeded_scenario(tmp_path):
    assert check_scenario(_SeededCoin(), _CoinConfig(out=tmp_path / "c"))["heads"] >= 0


def test_checker_catches_an_unseeded_scenario(tmp_path):
    with pytest.raises(AssertionError, match="same seed gave different results"):
        check_scenario(_UnseededCoin(), _CoinConfig(out=tmp_path / "c"))


def test_checker_catches_a_scenario_that_writes_no_results(tmp_path):
    with pytest.raises(AssertionError, match="wrote no"):
        check_scenario(_ForgetfulCoin(), _CoinConfig(out=tmp_path / "c"))


def test_checker_catches_an_undocumented_option():
    @dataclasses.dataclass
    class Bare(CommonOptions):
        flips: int = 0

        def validate(self) -> None:
            pass

    with pytest.raises(AssertionError, match="no help text"):
        check_config_type(Bare)


def test_checker_catches_a_config_that_repeats_the_common_options_instead_of_inheriting_them():
    @dataclasses.dataclass
    class Standalone:
        seed: int = option(0, "seed")
        out: Path = option(Path("x"), "output folder")

        def validate(self) -> None:
            pass

    with pytest.raises(AssertionError, match="CommonOptions"):
        check_config_type(Standalone)


def test_checker_catches_a_validation_that_accepts_anything():
    with pytest.raises(AssertionError, match="accepted a bad value"):
        check_validation_names_field(_CoinConfig, "seed", -5)
