"""Offline evaluation: fit a recommender on a split's training part and rank the held-out items.

The scenario behind ``recarena evaluate`` (and a YAML ``kind: evaluate``). The model is always
reported beside the random baseline measured in the same run, and the result lands as JSON in
the file ``--out`` names (the one scenario whose ``out`` is a file, not a folder: it writes no
report.html).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from recarena.recommenders import Recommender, RecommenderError, build_recommender, history_scorer, parse_assignments
from recarena.recommenders.registry import broken_recommender_plugins, recommender_class, recommender_names
from recarena.recommenders.evaluation import EvaluationResult, evaluate, evaluate_sampled
from recarena.simulator.atomic import write_text_atomically
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import Split, make_split

from recarena.scenarios.config import CommonOptions, option
from recarena.scenarios.contract import Scenario, ScenarioError, check_out_folder

# The registry's names (built-ins, then plugins), read from it so a new recommender needs no edit here; a Literal so
# --help lists them. Broken plugins' names are accepted here so that asking for one reports its distribution in one line.
ModelName = Literal[tuple(dict.fromkeys(recommender_names() + [p.name for p in broken_recommender_plugins()]))]  # type: ignore[valid-type]


@dataclass
class EvaluateConfig(CommonOptions):
    """What `recarena evaluate` runs."""

    model: ModelName = option("pop", "the recommender to evaluate (from the recommenders registry)")
    model_params: list[str] = option([], "the model's hyper-parameters as name=value (e.g. dim=64 lr=0.002)")
    split: Literal["loo", "temporal", "random"] = option("loo", "how interactions are held out")
    k: list[int] = option([10], "cut-offs for HR, Recall, NDCG and MRR")
    sampled: bool = option(False, "also report the sampled protocol (target vs 100 negatives)")
    out: Path | None = option(None, "write the results as JSON to this file")

    def validate(self) -> None:
        """The cut-offs and the model's hyper-parameters (ScenarioError naming the field)."""
        if not self.k or min(self.k) < 1:
            raise ScenarioError(f"k: each cut-off must be at least 1, got {self.k}")
        if self.out is not None and self.out.is_dir():
            raise ScenarioError(f"out: {self.out} is a folder; evaluate writes one JSON file, give its name (e.g. {self.out / 'evaluation.json'})")
        check_out_folder(self.out.parent if self.out is not None else None)
        try:
            params_type = recommender_class(self.model).Params
        except RecommenderError as error:
            raise ScenarioError(f"model: {error}") from None
        try:
            params_type.build(self.model, None, parse_assignments(self.model_params))
        except RecommenderError as error:
            raise ScenarioError(f"model_params: {error}") from None


def _build(name: str, config: EvaluateConfig) -> Recommender:
    params = parse_assignments(config.model_params) if name == config.model else {}
    return build_recommender(name, {"seed": config.seed, "progress": config.progress, **params})


def _run_one(model: Recommender, split: Split, config: EvaluateConfig) -> tuple[dict[str, EvaluationResult], float]:
    started = time.perf_counter()
    model.fit(split.train_dataset(), valid=split.valid)  # early stopping on the validation part only
    fit_seconds = time.perf_counter() - started
    scorer = history_scorer(model, split, "test")  # conditions on train + validation, as the test protocol says
    results = {"full": evaluate(scorer, split, "test", config.k)}
    if config.sampled:
        results["sampled"] = evaluate_sampled(scorer, split, "test", config.k, seed=config.seed)
    return results, fit_seconds


def run_offline_evaluation(config: EvaluateConfig) -> dict:
    """Evaluate `config.model` and the random baseline; return (and optionally write) the report."""
    dataset = load_dataset(config.dataset)
    split = make_split(dataset, config.split, seed=config.seed)
    report = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items() if k != "progress"},
              "dataset": dataset.name, "split": split.summary(), "models": {}}
    names = [config.model] + (["random"] if config.model != "random" else [])
    models = {name: _build(name, config) for name in names}  # bad parameters fail before any training
    for name, model in models.items():
        results, fit_seconds = _run_one(model, split, config)
        report["models"][name] = {"fit_seconds": fit_seconds, **{p: r.metrics for p, r in results.items()},
                                  "users": results["full"].n_users}
    if config.out is not None:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(config.out, json.dumps(report, indent=2))
    return report


def format_report(report: dict) -> str:
    """The report as a small table, the model first and the baseline below it."""
    lines = [f"{report['dataset']}  split={report['config']['split']}  {report['split']}"]
    for protocol in ("full", "sampled"):
        rows = {name: m[protocol] for name, m in report["models"].items() if protocol in m}
        if not rows:
            continue
        metrics = list(next(iter(rows.values())))
        lines.append(f"{protocol} ranking, test part:")
        lines.append("  " + "model".ljust(8) + "".join(m.rjust(11) for m in metrics))
        for name, values in rows.items():
            lines.append("  " + name.ljust(8) + "".join(f"{values[m]:11.4f}" for m in metrics))
    return "\n".join(lines)


class EvaluateScenario(Scenario[EvaluateConfig]):
    """Offline evaluation: fit a recommender on the training part, rank every item the user has not interacted with for the
    held-out test item, and report HR, Recall, NDCG and MRR at each K beside a random baseline (and, with --sampled, the
    sampled protocol against 100 negatives)."""

    name = "evaluate"
    help = "offline evaluation of a recommender against the random baseline"
    config_type = EvaluateConfig

    def run(self, config: EvaluateConfig) -> dict[str, Any]:
        config.validate()
        return run_offline_evaluation(config)

    def summary(self, results: dict[str, Any]) -> str:
        out = results["config"].get("out")
        return format_report(results) + (f"\nresults written to {out}" if out is not None else "")
