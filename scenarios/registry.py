"""Every scenario people can run, by name: the CLI's subcommands and the YAML files' ``kind:``.

Explicit on purpose (no plug-in discovery): a new scenario is a module with a `Scenario`
subclass, added here with one line.
"""

from __future__ import annotations

from recarena.scenarios.ab.scenario import ABScenario
from recarena.scenarios.agreement.scenario import AgreementScenario
from recarena.scenarios.augment.scenario import AugmentScenario
from recarena.scenarios.contract import Scenario, ScenarioError
from recarena.scenarios.evaluate.scenario import EvaluateScenario
from recarena.scenarios.feedback_loop.scenario import FeedbackLoopScenario
from recarena.scenarios.fidelity.scenario import FidelityScenario
from recarena.scenarios.prompt_bench.scenario import PromptBenchScenario
from recarena.scenarios.prompt_opt.scenario import PromptOptScenario
from recarena.scenarios.tune_llm.scenario import TuneLLMScenario

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in (
    ABScenario(),
    AgreementScenario(),
    AugmentScenario(),
    EvaluateScenario(),
    FeedbackLoopScenario(),
    FidelityScenario(),
    PromptOptScenario(),
    PromptBenchScenario(),
    TuneLLMScenario(),
)}  # fmt: skip


def scenario_named(name: str) -> Scenario:
    """The scenario called `name`; ScenarioError listing the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"kind: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
