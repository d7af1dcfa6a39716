"""The `recarena` command line.

Each subcommand is a typed config dataclass (see `config.py`) and a function
that runs it. Errors a person can fix (bad data, bad options) print one line
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from recarena.recommenders import RecommenderError
from recarena.simulator.data import DataError, load_dataset
from recarena.simulator.rundir import RunConfigMismatch

from .ab_test import ABConfig, ABConfigError
from .config import add_arguments, from_namespace, option
from .offline_eval import EvaluateConfig, format_report, run_offline_evaluation


@dataclass
class DataInfoConfig:
    """What `recarena data info` shows."""

    dataset: str = option("ml-100k", "built-in dataset name (ml-100k, ml-1m) or a folder of data files")
    refresh: bool = option(False, "re-read the source files instead of the parquet cache")


def data_info(config: DataInfoConfig) -> None:
    print(load_dataset(config.dataset, refresh=config.refresh).describe().to_text())


def run_evaluate(config: EvaluateConfig) -> None:
    report = run_offline_evaluation(config)
    print(format_report(report))
    if config.out is not None:
        print(f"results written to {config.out}")


def run_ab_command(config: ABConfig) -> None:
    from .ab_test import run_aa, run_ab
    from .report import format_aa, format_summary

    if config.aa:
        print(format_aa(run_aa(config)))
        return
    results = run_ab(config)
    print(format_summary(results))
    print(f"results: {config.out / 'results.json'}")
    if "report" in results:
        print(f"report:  {results['report']}")


def run_experiment_file(namespace: argparse.Namespace) -> None:
    from .experiment import load_experiment

    run_ab_command(load_experiment(namespace.file))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recarena", description="An arena where recommenders meet simulated users.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    info = data_commands.add_parser("info", help="print a dataset's shape: users, items, interactions, density, ratings, time span")
    # The dataset is positional here (`recarena data info ml-100k`), a flag elsewhere.
    info.add_argument("dataset", nargs="?", default="ml-100k", help="built-in dataset name (ml-100k, ml-1m) or a folder")
    info.add_argument("--refresh", action=argparse.BooleanOptionalAction, default=False, help="ignore the parquet cache")
    info.set_defaults(handler=lambda ns: data_info(from_namespace(DataInfoConfig, ns)))

    evaluate = commands.add_parser("evaluate", help="offline evaluation of a recommender against the random baseline")
    add_arguments(evaluate, EvaluateConfig)
    evaluate.set_defaults(handler=lambda ns: run_evaluate(from_namespace(EvaluateConfig, ns)))

    ab = commands.add_parser(
        "ab", help="simulated A/B test of recommenders with simulated users (--aa: the A/A self-check)",
        description="Simulated A/B test: each arm's recommender meets the same simulated users (paired twins) or a "
        "random share of them (split); effects against the control with bootstrap intervals, tests, Holm correction "
        "and the users needed for 80%% power; results.json and report.html in --out.",
    )
    add_arguments(ab, ABConfig)
    ab.set_defaults(handler=lambda ns: run_ab_command(from_namespace(ABConfig, ns)))

    run = commands.add_parser("run", help="run an experiment from a YAML file (keys: the options of `recarena ab`)")
    run.add_argument("file", type=Path, help="YAML file, e.g. 'arms: pop,bpr' / 'users: 200' / 'out: runs/x' (kind: ab)")
    run.set_defaults(handler=run_experiment_file)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (DataError, RecommenderError, ABConfigError, RunConfigMismatch) as error:
        print(f"recarena: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
