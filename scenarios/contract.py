"""The scenario contract: what every experiment people run (`recarena ab`, `fidelity`, ...) provides.

A scenario is one question answered with a command, a results file and a report::

    scenario = SCENARIOS["ab"]                       # registry.py maps names to scenarios
    config = scenario.config_type(users=50, out=Path("runs/x"))
    config.validate()                                # ScenarioError naming the field, before any work
    results = scenario.run(config)                   # writes out/results.json (and out/report.html)
    print(scenario.summary(results))

Rules (checked by `recarena.scenarios.checker.check_scenario`):

- ``config_type`` is a dataclass inheriting `recarena.scenarios.config.CommonOptions` (``dataset``,
  ``seed``, ``out``, ``progress``; `ReportOptions` adds ``html``) whose every field is an `option`
  with help text (so ``--help`` and a YAML file document themselves); it has a ``validate()``
  method that raises `ScenarioError` with a one-line message naming the field. It checks every
  setting it can without the data (model parameters' values, an ``out`` that is a file:
  `check_out_folder`), so a run is refused before it writes anything.
- ``run(config)`` validates, reads the data, and only then makes its run directory (a
  `recarena.simulator.rundir.RunDirectory` where it keeps events: locked, the data recorded by
  content); it does the work with a tqdm bar when ``config.progress`` is true, writes
  ``results.json`` (plain JSON, the returned dict) into ``config.out`` and, when the config has
  ``html`` set, a self-contained ``report.html``, each whole or not at all
  (`recarena.simulator.atomic`); it returns the results. (``evaluate`` is the one
  exception: its ``out`` names the JSON file itself, and it may be None: print only.)
- Everything random derives from ``config.seed``: the same config gives the same results, apart
  from wall-clock timings, which live under keys ending in ``_s`` or ``seconds`` or named ``timings``.
- ``summary(results)`` is the text the command prints.
"""

from __future__ import annotations

import json
import math
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from recarena.simulator.atomic import write_text_atomically

ConfigT = TypeVar("ConfigT")


class ScenarioError(ValueError):
    """A bad scenario setting: one line that names the field (the CLI prints it and exits with 2)."""


class Scenario(ABC, Generic[ConfigT]):
    """An experiment: a typed config in, ``results.json`` (+ ``report.html``) out. See the module docstring."""

    name: ClassVar[str]
    """The CLI subcommand (``recarena NAME``) and the YAML ``kind:``."""
    help: ClassVar[str]
    """One line for ``recarena --help``."""
    config_type: ClassVar[type]
    """The dataclass of the scenario's options."""

    @abstractmethod
    def run(self, config: ConfigT) -> dict[str, Any]:
        """Validate `config`, run, write ``config.out/results.json`` (and the report); return the results."""

    def summary(self, results: dict[str, Any]) -> str:
        """The terminal summary (default: where the files are)."""
        lines = [f"{self.name}: results in {results.get('results_file', '')}"]
        if results.get("report"):
            lines.append(f"report: {results['report']}")
        return "\n".join(lines)

    def description(self) -> str:
        """The longer text for ``recarena NAME --help`` (default: the class docstring's first paragraph)."""
        return (type(self).__doc__ or self.help).strip().split("\n\n")[0]


def where_written(results: dict[str, Any]) -> str:
    """The summary's last lines: ``results: PATH`` and, when a report was written, ``report:  PATH``."""
    lines = [f"results: {results['results_file']}"]
    if results.get("report"):
        lines.append(f"report:  {results['report']}")
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: numpy scalars and arrays to Python, NaN/inf to None, paths to strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(results: dict[str, Any], out: Path) -> Path:
    """Write `results` to ``out/results.json`` (creating `out`) whole or not at all; returns the file's path."""
    out = Path(out)
    check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(out / "results.json", json.dumps(jsonable(results), indent=2))


def check_out_folder(out: Path | None, field: str = "out") -> None:
    """ScenarioError naming `field` when the output folder `out`, or the nearest of its parents that exists, is a file.

    Called by a config's `validate`, so that a run that could never write its files fails before any work."""
    if out is None:
        return
    existing = next((p for p in (Path(out), *Path(out).parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == Path(out) else f" (so {out} cannot be made)"
        raise ScenarioError(f"{field}: {existing} is a file{where}; give a folder for the run's files")


class ScenarioWarning(UserWarning):
    """Something a person should know about a run that still goes ahead (the CLI prints it in one line)."""


def capped(field: str, asked: int, available: int, what: str) -> int:
    """``min(asked, available)``, warning once that only `available` will run when `field` asked for more."""
    if asked > available:
        warnings.warn(f"{field}: {asked} asked but {what} has {available}; {available} will run", ScenarioWarning, stacklevel=2)
    return min(asked, available)


def timing_free(results: Any) -> Any:
    """`results` without wall-clock figures (keys ending in ``_s`` or ``seconds``, ``timings``) and file paths."""
    if isinstance(results, dict):
        return {k: timing_free(v) for k, v in results.items()
                if not (str(k).endswith(("_s", "seconds")) or k in ("timings", "wall", "report", "results_file", "run"))}  # fmt: skip
    if isinstance(results, list):
        return [timing_free(v) for v in results]
    return results


def check_llm_training_data(specs: list[Any], train: Any, prompts: dict[str, int | str] | None = None) -> None:
    """ScenarioError naming ``llm`` when an LLM's tuned adapter was trained on anything but `train` (this run's training
    part, a `Dataset`): held-out interactions must not reach a user model, an adapter included. Also when it was tuned
    on other questions than the users will ask: its manifest's prompt versions must be `prompts` (default: the users'
    prompts today, `recarena.agents.tuning.examples.prompt_versions`; see `same_prompts`)."""
    from recarena.agents.llm.factory import adapter_manifest, spec_adapter
    from recarena.agents.tuning.examples import prompt_versions, same_prompts

    wanted = None
    for spec in specs:
        manifest = adapter_manifest(spec)
        if manifest is None:
            continue
        wanted = wanted or train.fingerprint()
        data = manifest.get("data")
        # An unreadable fingerprint is never equal to a real one, so the run refuses the adapter.
        seen = str(data.get("fingerprint", "")) if isinstance(data, dict) else ""
        if seen != wanted:
            raise ScenarioError(f"llm: the adapter {spec_adapter(spec)} was trained on other data than this run's training part "
                                f"({train.name}); held-out interactions may have reached it. Tune on this split: recarena tune-llm")  # fmt: skip
        prompts = prompt_versions() if prompts is None else prompts
        tuned = manifest.get("prompts")
        if not same_prompts(tuned, prompts):
            raise ScenarioError(f"llm: the adapter {spec_adapter(spec)} was tuned on other prompts than the users send (its prompt "
                                f"versions {tuned}, the users' {prompts}). Tune it again: recarena tune-llm")  # fmt: skip
