"""`recarena prompt-opt`: optimise the LLM reranker's prompt, against equal-budget baselines, offline and online.

    recarena prompt-opt --method po4isr --dataset ml-100k --llm embedded --budget 300 --out runs/po4isr

For each seed: draw disjoint train / validation / test users and build their ranking cases
(evaluator.py); run every method (the chosen ones plus the baselines ``initial`` and
``best-of-n``) from the same initial prompt under the same budget, each logging to
``out/seed-S/METHOD.jsonl`` (a killed run resumes from these logs); rank the test cases with each
method's chosen prompt. Then compare on the test cases with bootstrap intervals (and over seeds
when there are several), run the online check (online.py) of the first method's final prompt
against the initial one, and write ``results.json`` and ``report.html``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from recarena.simulator.rundir import RunLock

from recarena.scenarios.config import LLMOptions, option
from recarena.scenarios.contract import Scenario, check_out_folder, where_written, write_results
from recarena.scenarios.prompt_opt.contract import Budget, PromptOptError
from recarena.scenarios.prompt_opt.evaluator import RerankEvaluator, split_cases
from recarena.scenarios.prompt_opt.metering import RANKER, MeteredLLM
from recarena.scenarios.prompt_opt.methods import BASELINES, METHODS, make_toolkit, optimizer_class
from recarena.scenarios.prompt_opt.po4isr import PO4ISRSettings
from recarena.scenarios.prompt_opt.recprompt import RecPromptSettings
from recarena.scenarios.prompt_opt.results import compare_methods, verdict


@dataclass
class PromptOptConfig(LLMOptions):
    """What `recarena prompt-opt` (and a YAML ``kind: prompt-opt``) runs."""

    method: str = option("po4isr", "optimisers to run, comma-separated: po4isr, recprompt, best-of-n, initial")
    baselines: bool = option(True, "also run the equal-budget baselines: the initial prompt and best-of-N random paraphrases")
    optimiser_llm: str = option("", "the LLM that writes prompts (default: the ranker's LLM)")
    timeout_s: float = option(60.0, "per-call LLM timeout in seconds (a call that times out is a counted failure: a miss or a rejected proposal)")
    budget: int = option(300, "most LLM requests per method and seed, ranker and optimiser together (cache hits count)")
    budget_tokens: int = option(0, "most LLM tokens per method and seed (0: no token cap)")
    template: Path | None = option(None, "the initial prompt: a text file with {history} and {candidates} (default: the reranker's built-in one)")
    mode: Literal["listwise", "pointwise"] = option("listwise", "ranking mode: listwise (ids, one request per case) or pointwise (Yes/No, one request per candidate)")
    retries: int = option(1, "the ranker's retries of an unreadable listwise answer, with a format reminder (0-2; each is a request)")
    protocol: Literal["recprompt", "po4isr"] = option("recprompt", "case protocol of prompt_bench: recprompt (10 candidates) or po4isr (20)")
    history_len: int = option(10, "most recent history items shown in a prompt")
    train_users: int = option(40, "users whose training cases the optimisers learn from")
    valid_users: int = option(15, "users whose validation cases choose the prompt")
    test_users: int = option(30, "users whose test cases judge the chosen prompts (never seen by an optimiser)")
    train_batch: int = option(8, "training cases ranked per step to find mistakes (RecPrompt, PO4ISR)")
    error_cutoff: int = option(0, "PO4ISR: a case is a mistake when the held-out item is missing or ranked below this (0: half the candidates, PO4ISR's 10 of 20)")
    beam: int = option(2, "PO4ISR: prompts kept per round")
    pulls: int = option(6, "PO4ISR: bandit pulls per round")
    pull_batch: int = option(4, "PO4ISR: training cases per bandit pull")
    seeds: int = option(1, "repeats with seeds seed, seed+1, ...: new users, cases and draws (intervals over seeds need 2+)")
    online: bool = option(True, "online check: paired simulated A/B test of the initial against the first method's final prompt")
    online_users: int = option(30, "simulated users in the online check")
    online_pages: int = option(2, "pages per session in the online check")
    online_base: str = option("pop", "the candidate generator both online arms rerank (a registry name)")
    bootstrap: int = option(2000, "bootstrap resamples for the confidence intervals")
    out: Path = option(Path("runs/prompt-opt"), "run directory: logs per method and seed, results.json, report.html")

    def methods(self) -> list[str]:
        chosen = [m.strip() for m in self.method.split(",") if m.strip()]
        return list(dict.fromkeys(chosen + (list(BASELINES) if self.baselines else [])))

    def validate(self) -> None:
        check_out_folder(self.out)
        chosen = [m.strip() for m in self.method.split(",") if m.strip()]
        if not chosen:
            raise PromptOptError("method: give at least one method (po4isr, recprompt, best-of-n, initial)")
        for name in chosen:
            optimizer_class(name)
        Budget(self.budget, self.budget_tokens).validate()
        if self.error_cutoff < 0:
            raise PromptOptError(f"error_cutoff: must be 0 (half the candidates) or positive, got {self.error_cutoff}")
        for name, low in (("history_len", 1), ("train_users", 1), ("valid_users", 1), ("test_users", 1),
                          ("train_batch", 1), ("beam", 1), ("pulls", 1), ("pull_batch", 1), ("seeds", 1),
                          ("online_users", 2), ("online_pages", 1), ("bootstrap", 100)):  # fmt: skip
            if getattr(self, name) < low:
                raise PromptOptError(f"{name}: must be at least {low}, got {getattr(self, name)}")
        if self.online:
            from recarena.recommenders import RecommenderError, recommender_class

            try:
                recommender_class(self.online_base)
            except RecommenderError as error:
                raise PromptOptError(f"online_base: {error}") from None
        if not 0 <= self.retries <= 2:
            raise PromptOptError(f"retries: must be 0, 1 or 2, got {self.retries}")
        if not self.timeout_s > 0:
            raise PromptOptError(f"timeout_s: must be positive, got {self.timeout_s}")
        if self.template is not None and not Path(self.template).is_file():
            raise PromptOptError(f"template: file {self.template} not found")
        per_case = (10 if self.protocol == "recprompt" else 20) if self.mode == "pointwise" else 1
        if self.budget and self.budget < self.valid_users * per_case:
            raise PromptOptError(f"budget: {self.budget} requests cannot score even the initial prompt on {self.valid_users} validation users")

    def recorded(self) -> dict[str, Any]:
        skip = {"progress", "html", "out", "llm_cache", "max_llm_failure_rate"}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}


def initial_template(config: PromptOptConfig) -> str:
    """The initial prompt text: the file given, or the reranker's built-in template of the mode."""
    from recarena.recommenders.llm_prompt import DEFAULT_TEMPLATES, template_problems

    if config.template is None:
        return DEFAULT_TEMPLATES[config.mode].text
    text = Path(config.template).read_text(encoding="utf-8")
    problems = template_problems(text)
    if problems:
        raise PromptOptError(f"template: {config.template}: {problems[0]}")
    return text


def settings_for(name: str, config: PromptOptConfig) -> Any:
    if name == "po4isr":
        cutoff = config.error_cutoff or (5 if config.protocol == "recprompt" else 10)
        return PO4ISRSettings(error_cutoff=cutoff, beam=config.beam, train_batch=config.train_batch, pulls=config.pulls, pull_batch=config.pull_batch)
    if name == "recprompt":
        return RecPromptSettings(train_batch=config.train_batch)
    return None


def run_prompt_opt(config: PromptOptConfig, llm: Any = None, optimiser_llm: Any = None) -> dict[str, Any]:
    """Run `config` (see the module docstring); `llm` / `optimiser_llm` override the configured ones (tests)."""
    from recarena.simulator.data import load_dataset
    from recarena.simulator.data.splits import leave_one_out

    config.validate()
    started = time.perf_counter()
    initial = initial_template(config)
    dataset = load_dataset(config.dataset)
    split = leave_one_out(dataset)
    with RunLock(config.out):  # the logs resume a killed run; two runs at once would write into each other's
        return _optimise(config, dataset, split, initial, started, llm, optimiser_llm)


def _optimise(config: PromptOptConfig, dataset: Any, split: Any, initial: str, started: float, llm: Any, optimiser_llm: Any) -> dict[str, Any]:
    """`run_prompt_opt` with its run folder held."""
    from recarena.agents.llm import build_llm

    llm = llm if llm is not None else build_llm(config.llm, config.llm_cache, timeout_s=config.timeout_s,
                                                      max_failure_rate=config.max_llm_failure_rate)
    if optimiser_llm is None and config.optimiser_llm:
        optimiser_llm = build_llm(config.optimiser_llm, config.llm_cache, timeout_s=config.timeout_s,
                                  max_failure_rate=config.max_llm_failure_rate)
    budget = Budget(config.budget, config.budget_tokens)
    methods, per_seed = config.methods(), []
    bar = tqdm(total=config.seeds * len(methods), desc="prompt-opt (seeds x methods)", disable=not config.progress)
    for offset in range(config.seeds):
        seed = config.seed + offset
        counts = {"train": config.train_users, "valid": config.valid_users, "test": config.test_users}
        cases = split_cases(split, config.protocol, counts, seed, config.history_len)
        make_evaluator = lambda ranker, seed=seed: RerankEvaluator(ranker, mode=config.mode, seed=seed,  # noqa: E731
                                                                   max_retries=config.retries)
        toolkit = make_toolkit(llm, make_evaluator, optimiser_llm)
        outcomes = {}
        for name in methods:
            optimizer = METHODS[name](toolkit, settings_for(name, config), seed=seed,
                                      log_path=config.out / f"seed-{seed}" / f"{name}.jsonl", progress=config.progress)  # fmt: skip
            result = optimizer.optimize(initial, cases["train"], cases["valid"], budget)
            outcomes[name] = result
            bar.update(1)
        per_seed.append(_test_phase(seed, outcomes, cases["test"], llm, make_evaluator, initial))
    bar.close()
    results: dict[str, Any] = {
        "config": config.recorded() | {"out": str(config.out)}, "dataset": dataset.name, "methods": methods,
        "initial_prompt": initial, "budget": asdict(budget), "seeds": per_seed,
    }  # fmt: skip
    results["comparison"] = compare_methods(per_seed, methods, config.bootstrap, config.seed)
    results["verdict"] = verdict(results["comparison"], methods)
    results["online"] = _online(config, dataset, split, llm, per_seed[0], methods, initial)
    results["run"] = {"seconds": time.perf_counter() - started, "model_calls": getattr(llm.accountant.total(), "calls", None),
                      "cache_hits": getattr(llm.accountant.total(), "cache_hits", None)}  # fmt: skip
    results["results_file"] = str(write_results(results, config.out))
    if config.html:
        from recarena.scenarios.prompt_opt.report import write_report

        results["report"] = str(write_report(results, config.out / "report.html"))
        write_results(results, config.out)
    return results


def _test_phase(seed: int, outcomes: dict[str, Any], test_cases: list, llm: Any, make_evaluator, initial: str) -> dict[str, Any]:
    """Rank the test cases with each method's chosen prompt (each distinct prompt once)."""
    from recarena.scenarios.prompt_opt.metering import Meter

    meter = Meter()
    evaluator = make_evaluator(MeteredLLM.wrap(llm, meter, RANKER))
    scored: dict[str, list[Any]] = {}
    methods = {}
    for name, result in outcomes.items():
        text = result.best.text
        if text not in scored:
            scored[text] = evaluator(text, test_cases)
        test = scored[text]
        methods[name] = {**result.as_dict(), "test_scores": [r.score for r in test], "test_misses": sum(r.miss for r in test),
                         "test_mean": float(np.mean([r.score for r in test])) if test else None, "changed": text != initial,
                         "resumed_units": result.resumed_units}  # fmt: skip
    return {"seed": seed, "test_cases": len(test_cases), "methods": methods, "test_cost": meter.total().stable()}


def _online(config: PromptOptConfig, dataset, split, llm, first_seed: dict[str, Any], methods: list[str], initial: str) -> dict[str, Any]:
    """The online check of the first method (in the order asked) whose first seed ended on a new prompt."""
    if not config.online:
        return {"skipped": "the online check is off (--no-online)"}
    changed = [m for m in methods if m != "initial" and first_seed["methods"][m]["best"]["text"] != initial]
    if not changed:
        return {"skipped": f"every method kept the initial prompt (seed {first_seed['seed']}): there is no second arm to test online"}
    method, final = changed[0], first_seed["methods"][changed[0]]["best"]["text"]
    from recarena.scenarios.prompt_opt.online import online_check

    return {"method": method} | online_check(dataset, split, llm, {"initial": initial, "final": final}, out=config.out / "online", base=config.online_base,
                        mode=config.mode, pool=10 if config.protocol == "recprompt" else 20, history_len=config.history_len, retries=config.retries,
                        users=config.online_users,
                        pages=config.online_pages, seed=config.seed, bootstrap=min(config.bootstrap, 1000))  # fmt: skip


class PromptOptScenario(Scenario[PromptOptConfig]):
    """Prompt optimisation of the LLM reranker: RecPrompt and PO4ISR against the initial prompt and best-of-N random
    paraphrases under the same LLM budget; test scores with bootstrap intervals, and an online check of the final
    prompt against the initial one with simulated users. Logs per method and seed, results.json and report.html."""

    name = "prompt-opt"
    help = "optimise the LLM reranker's prompt (RecPrompt, PO4ISR) against equal-budget baselines, offline and online"
    config_type = PromptOptConfig

    def run(self, config: PromptOptConfig) -> dict[str, Any]:
        return run_prompt_opt(config)

    def summary(self, results: dict[str, Any]) -> str:
        from recarena.scenarios.prompt_opt.report import format_summary

        return format_summary(results) + "\n" + where_written(results)
