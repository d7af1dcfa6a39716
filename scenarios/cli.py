"""The `recarena` command line.

Every scenario of the registry (`registry.py`) is a subcommand whose flags are its config's
fields (see `config.py`); besides them, `data info` shows a dataset and `run FILE` runs a YAML
experiment. Errors a person can fix (bad data, bad options, a bad LLM setting such as an adapter made for
another model, a busy or foreign run directory) print
one line and exit with status 2; an LLM that does not answer, or falls back more often than
``--max-llm-failure-rate`` allows (`LLMHealthError`), prints one line and exits with status 1, with no
results written, and so does a recommender service that stops answering mid-run or fails more often than
``--max-service-failure-rate`` allows (`ServiceHealthError`; one that does not answer at start is a bad setting, 2); anything else is a bug and keeps its traceback. A scenario's
warnings (`ScenarioWarning`: fewer users than asked, say) print one line too.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from recarena.agents.llm.health import LLMHealthError
from recarena.agents.llm.protocol import LLMSpecError
from recarena.agents.user_kinds import UserKindError, user_kind_plugins
from recarena.recommenders import RecommenderError
from recarena.recommenders.errors import ServiceHealthError
from recarena.recommenders.registry import recommender_plugins
from recarena.simulator.data import DataError, load_dataset
from recarena.simulator.rundir import RunDirectoryError
from recarena.simulator.snapshots import UnsafeSnapshotError

from recarena.scenarios.config import add_arguments, from_namespace, option
from recarena.scenarios.contract import ScenarioError, ScenarioWarning
from recarena.scenarios.registry import SCENARIOS


@dataclass
class DataInfoConfig:
    """What `recarena data info` shows."""

    dataset: str = option("ml-100k", "built-in dataset name (ml-100k, ml-1m) or a folder of data files")
    refresh: bool = option(False, "re-read the source files instead of the parquet cache")


def data_info(config: DataInfoConfig) -> None:
    print(load_dataset(config.dataset, refresh=config.refresh).describe().to_text())


def run_scenario(name: str, config: object) -> None:
    scenario = SCENARIOS[name]
    print(scenario.summary(scenario.run(config)))


def run_experiment_file(namespace: argparse.Namespace) -> None:
    from recarena.scenarios.experiment import load_experiment

    run_scenario(*load_experiment(namespace.file))


def plugins_epilog() -> str:
    """What ``recarena --help`` says of the plugins (entry points ``recarena.recommenders`` and ``recarena.users``): the
    usable names with their distributions, and the broken ones' names (asking for one says why, in one line)."""
    recommenders, kinds = recommender_plugins(), user_kind_plugins()
    lines = [f"plugin {what}: " + ", ".join(f"{name} ({table.distributions[name]})" for name in table.loaded)
             for what, table in (("recommenders", recommenders), ("user kinds", kinds)) if table.loaded]  # fmt: skip
    broken = [*recommenders.broken.values(), *kinds.broken.values()]
    if broken:
        lines.append("broken plugins (asking for one says why): " + ", ".join(f"{b.name} ({b.distribution})" for b in broken))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recarena", description="An arena where recommenders meet simulated users.",
                                     epilog=plugins_epilog() or None, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    info = data_commands.add_parser("info", help="print a dataset's shape: users, items, interactions, density, ratings, time span")
    # The dataset is positional here (`recarena data info ml-100k`), a flag elsewhere.
    info.add_argument("dataset", nargs="?", default="ml-100k", help="built-in dataset name (ml-100k, ml-1m) or a folder")
    info.add_argument("--refresh", action=argparse.BooleanOptionalAction, default=False, help="ignore the parquet cache")
    info.set_defaults(handler=lambda ns: data_info(from_namespace(DataInfoConfig, ns)))

    for name, scenario in SCENARIOS.items():
        sub = commands.add_parser(name, help=scenario.help, description=scenario.description())
        add_arguments(sub, scenario.config_type)
        sub.set_defaults(handler=lambda ns, name=name: run_scenario(name, from_namespace(SCENARIOS[name].config_type, ns)))

    run = commands.add_parser("run", help="run an experiment from a YAML file ('kind: NAME' picks the scenario; the keys are its options)")
    run.add_argument("file", type=Path, help=f"YAML file, e.g. 'kind: ab' / 'arms: pop,bpr' / 'users: 200' / 'out: runs/x' (kinds: {', '.join(SCENARIOS)})")
    run.set_defaults(handler=run_experiment_file)
    return parser


def _one_line_warnings(otherwise: Callable[..., None]) -> Callable[..., None]:
    """A `warnings.showwarning` that prints a scenario's warning in one line, like the errors, and hands any other to `otherwise`."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
             line: str | None = None) -> None:  # fmt: skip
        if issubclass(category, ScenarioWarning):
            print(f"recarena: warning: {message}", file=sys.stderr)
        else:
            otherwise(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    python_show = warnings.showwarning
    warnings.showwarning = _one_line_warnings(python_show)
    try:
        args.handler(args)
    except ServiceHealthError as error:  # before RecommenderError, its base: the run could not go on, like a dead LLM
        print(f"recarena: error: {error}", file=sys.stderr)
        return 1
    except (DataError, RecommenderError, ScenarioError, RunDirectoryError, UnsafeSnapshotError, UserKindError) as error:
        print(f"recarena: error: {error}", file=sys.stderr)
        return 2
    except LLMSpecError as error:  # a bad LLM setting: bad input
        print(f"recarena: error: llm: {error}", file=sys.stderr)
        return 2
    except LLMHealthError as error:
        print(f"recarena: error: {error}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = python_show
    return 0


if __name__ == "__main__":
    sys.exit(main())
