"""`recarena prompt-bench`: an LLM ranker on the fixed RecPrompt- and PO4ISR-style protocols, beside
random and the base recommenders (pop, BPR, SASRec) reranking the very same candidates.

    recarena prompt-bench --protocol both --users 30 --modes pointwise --llm embedded --out runs/prompt-bench

Every table row is a ranker on the same cases; the LLM rows add misses, calls, retries, tokens,
wall time and the position-bias check (how often the ranking kept the order shown, and how often
its top item was the first one shown, against 1/n by chance). Seeds redraw users, negatives and
shuffles; figures are means over seeds (with the standard deviation across seeds when there are
several). Files in --out: results.json, cases.csv (one row per ranker x seed x case), report.html.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from recarena.recommenders import RecommenderError, recommender_class
from recarena.recommenders.llm_prompt import (
    DEFAULT_TEMPLATES,
    PromptTemplate,
    TemplateError,
)
from recarena.simulator.atomic import replaced_atomically, write_text_atomically
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out

from recarena.scenarios import html_blocks as H
from recarena.scenarios.config import LLMOptions, option
from recarena.scenarios.contract import Scenario, ScenarioError, check_out_folder, where_written, write_results
from recarena.scenarios.prompt_bench.protocols import (
    PROTOCOLS,
    BenchResult,
    LLMCaseRanker,
    build_cases,
    evaluate_ranker,
    fit_baselines,
)

_TRAINED = ("bpr", "sasrec", "lightgcn", "hstu")


@dataclass
class PromptBenchConfig(LLMOptions):
    """What `recarena prompt-bench` runs."""

    protocol: Literal["recprompt", "po4isr", "both"] = option("both", "recprompt: 10 candidates; po4isr: 20 candidates; or both")
    users: int = option(30, "test users per seed (PO4ISR uses up to 1000)")
    seeds: int = option(1, "seeds seed, seed+1, ...: each redraws users, negatives and shuffles (PO4ISR reports 5)")
    modes: list[str] = option(["pointwise"], "LLM ranking modes: pointwise (Yes/No log-probabilities) and/or listwise (ordered ids)")
    llm: str = option("embedded", "the LLM: 'embedded' (SmolLM2 in-process) or 'openai:MODEL@BASE_URL'; 'none' for baselines only")
    llm_cache: Path | None = option(None, "SQLite cache of LLM answers (a warm rerun makes no calls)")
    llm_threads: int = option(0, "CPU threads of the embedded LLM (0: its default, min(4, cores))")
    template: Path | None = option(None, "a prompt template file with {history} and {candidates} (default: the built-in one per mode)")
    history_len: int = option(10, "most recent history items shown in a prompt")
    max_retries: int = option(2, "retries of an unreadable listwise answer (0-2), each with a format reminder")
    baselines: str = option("pop,bpr,sasrec", "recommenders reranking the same candidates (random is always shown)")
    baseline_epochs: int = option(40, "most training epochs of trained baselines (0: their defaults), so the bench runs in minutes")
    seed: int = option(0, "the first seed; also seeds the baselines' training")
    out: Path = option(Path("runs/prompt-bench"), "run directory: results.json, cases.csv, report.html")

    def protocols(self) -> list[str]:
        return list(PROTOCOLS) if self.protocol == "both" else [self.protocol]

    def baseline_names(self) -> list[str]:
        return [b.strip() for b in self.baselines.split(",") if b.strip()]

    def validate(self) -> None:
        check_out_folder(self.out)
        for name, value, low in (("users", self.users, 1), ("seeds", self.seeds, 1), ("history_len", self.history_len, 1),
                                 ("llm_threads", self.llm_threads, 0)):  # fmt: skip
            if value < low:
                raise ScenarioError(f"{name}: must be at least {low}, got {value}")
        if self.protocol not in ("recprompt", "po4isr", "both"):
            raise ScenarioError(f"protocol: choose recprompt, po4isr or both, got {self.protocol!r}")
        bad = [m for m in self.modes if m not in DEFAULT_TEMPLATES]
        if bad or not self.modes:
            raise ScenarioError(f"modes: each must be pointwise or listwise, got {self.modes!r}")
        if not 0 <= self.max_retries <= 2:
            raise ScenarioError(f"max_retries: must be 0, 1 or 2, got {self.max_retries}")
        if self.baseline_epochs < 0:
            raise ScenarioError(f"baseline_epochs: must be 0 or more, got {self.baseline_epochs}")
        for name in self.baseline_names():
            try:
                recommender_class(name)
            except RecommenderError as error:
                raise ScenarioError(f"baselines: {error}") from None
            if name == "llm-rerank":
                raise ScenarioError("baselines: llm-rerank is the thing under test, not a baseline")
        if self.template is not None:
            self.load_template("pointwise")

    def load_template(self, mode: str) -> PromptTemplate:
        if self.template is None:
            return DEFAULT_TEMPLATES[mode]
        if not Path(self.template).is_file():
            raise ScenarioError(f"template: file {self.template} not found")
        try:
            return PromptTemplate(Path(self.template).read_text(), name=Path(self.template).stem)
        except TemplateError as error:
            raise ScenarioError(f"template: {self.template}: {error}") from None


def _baseline_params(config: PromptBenchConfig) -> dict[str, dict[str, Any]]:
    if not config.baseline_epochs:
        return {}
    return {name: {"epochs": config.baseline_epochs, "patience": 5} for name in config.baseline_names() if name in _TRAINED}


def _summarise(results: list[BenchResult]) -> dict[str, Any]:
    """One table row from the same ranker's results over several seeds."""
    first = results[0]
    metrics = {k: float(np.mean([r.metrics[k] for r in results])) for k in first.metrics}
    spread = {k: float(np.std([r.metrics[k] for r in results], ddof=1)) if len(results) > 1 else None for k in first.metrics}
    cases = sum(r.cases for r in results)
    per_case = [row for r in results for row in r.per_case]
    return {
        "name": first.name, "metrics": metrics, "sd_over_seeds": spread, "cases": cases,
        "misses": sum(r.misses for r in results), "failed_calls": sum(r.failed_calls for r in results),
        "calls": sum(r.calls for r in results), "retries": sum(r.retries for r in results),
        "parse": {k: sum(r.parse.get(k, 0) for r in results) for k in ("parsed", "missing", "duplicates", "unknown")},
        "position_bias": {"kept_order": float(np.mean([c["kept_order"] for c in per_case])),
                          "kept_first": float(np.mean([c["kept_first"] for c in per_case])),
                          "random_kept_first": first.position_bias["random_kept_first"]},
        "tokens": {k: sum(r.tokens.get(k, 0) for r in results) for k in ("prompt", "completion")},
        "wall_s": sum(r.wall_s for r in results),
    }  # fmt: skip


def run_prompt_bench(config: PromptBenchConfig) -> dict[str, Any]:
    """Run the bench (see the module docstring); writes the files and returns results.json's content."""
    config.validate()
    started = time.perf_counter()
    split = leave_one_out(load_dataset(config.dataset))
    fit_started = time.perf_counter()
    baselines = fit_baselines(split, config.baseline_names(), config.seed, _baseline_params(config), progress=config.progress)
    fit_s = time.perf_counter() - fit_started
    rankers = list(baselines)
    llm = None
    if config.llm != "none":
        from recarena.agents.llm import build_llm

        llm = build_llm(config.llm, config.llm_cache, sampling={"seed": config.seed}, n_threads=config.llm_threads or None,
                        max_failure_rate=config.max_llm_failure_rate)
        rankers += [LLMCaseRanker(llm.for_component(f"prompt-bench-{m}"), config.load_template(m), m,  # type: ignore[arg-type]
                                  config.max_retries, config.seed, name=f"llm {m}") for m in config.modes]  # fmt: skip
    tables: dict[str, Any] = {}
    case_rows = []
    for protocol in config.protocols():
        by_ranker: dict[str, list[BenchResult]] = {r.name: [] for r in rankers}
        for offset in range(config.seeds):
            seed = config.seed + offset
            cases = build_cases(split, protocol, config.users, seed, history_len=config.history_len)
            for ranker in rankers:
                result = evaluate_ranker(ranker, cases, protocol=protocol, progress=config.progress,
                                         name=f"{ranker.name} [{protocol} seed {seed}]")  # fmt: skip
                result.name = ranker.name
                by_ranker[ranker.name].append(result)
                case_rows += [{"protocol": protocol, "seed": seed, "ranker": ranker.name, **row} for row in result.per_case]
        tables[protocol] = {"metrics": list(PROTOCOLS[protocol].metrics), "rows": [_summarise(v) for v in by_ranker.values()]}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(out / "cases.csv") as partial:
        pd.DataFrame(case_rows).to_csv(partial, index=False)
    results: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
                   if k not in ("out", "progress", "html", "llm_cache", "llm_threads", "max_llm_failure_rate")},
        "dataset": {"name": split.dataset.name, "users": split.dataset.n_users, "items": split.dataset.n_items},
        "templates": {m: config.load_template(m).as_dict() for m in config.modes} if llm is not None else {},
        "tables": tables,
        "timings": {"baseline_fit_s": fit_s, "total_s": time.perf_counter() - started},
    }  # fmt: skip
    if llm is not None:
        usage = llm.accountant.report()
        results["timings"]["llm"] = usage["total"]  # cache hits and wall time differ between warm and cold runs
        results["llm_fallbacks"] = len(usage["fallbacks"])
    results["results_file"] = str(write_results(results, out))
    if config.html:
        results["report"] = str(write_text_atomically(out / "report.html", render_report(results)))
        write_results(results, out)
    if llm is not None:
        llm.close()
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of one protocol's table."""
    metrics = table["metrics"]
    header = ["ranker", *metrics, "cases", "miss", "calls", "retries", "kept order", "top = 1st shown", "tokens in", "wall s"]
    rows = []
    for row in table["rows"]:
        cells = [row["name"]]
        for m in metrics:
            sd = row["sd_over_seeds"].get(m)
            cells.append(H.fmt(row["metrics"][m]) + (f" ± {H.fmt(sd)}" if sd is not None else ""))
        bias = row["position_bias"]
        cells += [str(row["cases"]), _pct(row["misses"] / max(1, row["cases"])), str(row["calls"]), str(row["retries"]),
                  _pct(bias["kept_order"]), f"{_pct(bias['kept_first'])} (chance {_pct(bias['random_kept_first'])})",
                  str(row["tokens"]["prompt"]), f"{row['wall_s']:.1f}"]  # fmt: skip
        rows.append(cells)
    return header, rows


def format_tables(results: dict[str, Any]) -> str:
    """The tables as Markdown, for the terminal and BENCHMARKS-style notes."""
    parts = []
    for protocol, table in results["tables"].items():
        header, rows = table_rows(table)
        lines = [f"### {protocol} ({PROTOCOLS[protocol].n_candidates} candidates, 1 positive)", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def render_report(results: dict[str, Any]) -> str:
    """report.html: one table per protocol and what the columns mean."""
    body = [f"<h1>LLM ranking bench on {H.escape(results['dataset']['name'])}</h1>",
            ('<p class="note">Every row ranks the same candidates. <b>miss</b>: no readable answer (the ranking was a '
             "seeded random order). <b>kept order</b>: the ranking equals the order shown (position bias). "
             "<b>top = 1st shown</b>: the top item was the first one shown, against chance 1/n.</p>")]  # fmt: skip
    for protocol, table in results["tables"].items():
        header, rows = table_rows(table)
        body.append(f"<h2>{H.escape(protocol)}</h2>")
        body.append(H.table(header, [[H.escape(c) for c in r] for r in rows], text_columns=(0,)))
    for mode, template in results.get("templates", {}).items():
        body.append(f"<h3>{H.escape(mode)} template {H.escape(template['name'])} v{template['version']}</h3>")
        body.append(f"<pre style=\"white-space: pre-wrap\">{H.escape(template['text'])}</pre>")
    return H.page("prompt bench", "\n".join(body))


class PromptBenchScenario(Scenario[PromptBenchConfig]):
    """LLM ranking bench: an LLM reranks the fixed RecPrompt-style (10 candidates) and PO4ISR-style (20 candidates)
    cases, beside random, pop, BPR and SASRec reranking the same candidates; misses, calls, tokens and position bias."""

    name = "prompt-bench"
    help = "LLM ranker on RecPrompt/PO4ISR-style protocols beside random, pop, BPR, SASRec"
    config_type = PromptBenchConfig

    def run(self, config: PromptBenchConfig) -> dict[str, Any]:
        return run_prompt_bench(config)

    def summary(self, results: dict[str, Any]) -> str:
        return format_tables(results) + "\n\n" + where_written(results)
