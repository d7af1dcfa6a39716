"""Every scenario people can run, by name: the CLI's subcommands and the YAML files' ``kind:``.

Explicit on purpose (no plug-in discovery): a new scenario is a module with a `Scenario`
subclass, added here with one line.
"""

from __future__ import annotations

from .ab_test import ABScenario
from .augment import AugmentScenario
from .contract import Scenario, ScenarioError
from .feedback_loop import FeedbackLoopScenario
from .fidelity import FidelityScenario
from .prompt_bench_run import PromptBenchScenario
from .prompt_opt.scenario import PromptOptScenario

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in (
    ABScenario(),
    AugmentScenario(),
    FeedbackLoopScenario(),
    FidelityScenario(),
    PromptOptScenario(),
    PromptBenchScenario(),
)}  # fmt: skip


def scenario_named(name: str) -> Scenario:
    """The scenario called `name`; ScenarioError listing the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"kind: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
