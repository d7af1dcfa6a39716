"""The online check: does the offline gain survive simulated users?

The initial prompt's reranker and the final prompt's reranker (``llm-rerank`` with the same base
model, pool and LLM; only the template file differs) meet the same simulated users as two arms of
a paired A/B test, with the A/B scenario's machinery (`recarena.scenarios.ab.scenario`: twins,
sessions, per-user metrics, bootstrap intervals, Holm). The arms are labelled ``llm-rerank``
(initial, the control) and ``llm-rerank#2`` (final), as `ABConfig` labels a model named twice; the
statistics are the A/B test's defaults (paired t-test, alpha 0.05).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recarena.agents.kit import build_user_kit
from recarena.recommenders import build_recommender
from recarena.simulator.arm_sessions import Twins, records_to_frames, simulate_arm
from recarena.simulator.data import Dataset
from recarena.simulator.data.splits import Split

from recarena.scenarios.ab.scenario import Assignment, ComparisonPlan, World, assign_users, summarise
from recarena.scenarios.prompt_opt.metering import Meter, MeteredLLM

INITIAL_ARM, FINAL_ARM = "llm-rerank", "llm-rerank#2"
ALPHA = 0.05  # the A/B test's default significance level


def online_check(dataset: Dataset, split: Split, llm: Any, prompts: dict[str, str], *, out: Path, base: str, mode: str,
                 pool: int, history_len: int, retries: int, users: int, pages: int, seed: int, bootstrap: int = 1000,
                 progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """A paired simulated A/B test of the initial against the final prompt (see the module docstring).

    `prompts` maps ``initial`` and ``final`` to template texts; returns the A/B summary (arms,
    comparisons) and the rerankers' LLM requests."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    plan = ComparisonPlan({INITIAL_ARM: "llm-rerank", FINAL_ARM: "llm-rerank"}, pages, design="paired", test="t", alpha=ALPHA,
                          bootstrap=bootstrap, seed=seed)  # fmt: skip
    meter = Meter()
    train = split.train_dataset()
    recommenders, fit_seconds = {}, {}
    for arm, key in ((INITIAL_ARM, "initial"), (FINAL_ARM, "final")):
        path = out / f"{key}_prompt.txt"
        path.write_text(prompts[key], encoding="utf-8")
        reranker = build_recommender("llm-rerank", {"base": base, "mode": mode, "pool": pool, "history_len": history_len,
                                                    "max_retries": retries, "template": str(path), "seed": seed})  # fmt: skip
        reranker.attach_llm(MeteredLLM.wrap(llm, meter, arm))
        t0 = time.perf_counter()
        recommenders[arm] = reranker.fit(train, valid=split.valid)
        fit_seconds[arm] = time.perf_counter() - t0
    kit = build_user_kit(train, seed=seed, validation=split.valid)
    world = World(dataset, split, kit, recommenders, fit_seconds)
    drawn, arms = assign_users(Assignment(users, (INITIAL_ARM, FINAL_ARM), "paired"), dataset.n_users, seed)
    twins = Twins(world.user_factory("statistical"), drawn, seed)
    records, usage = [], {}
    for position, arm in enumerate((INITIAL_ARM, FINAL_ARM)):
        run = simulate_arm("prompt-opt", arm, position, recommenders[arm], twins, arms[arm], seed=seed, pages=pages, slate_size=10)
        records += run.records
        usage[arm] = {"seconds": run.seconds}
    impressions, sessions = records_to_frames(records)
    world.fit_seconds = {"llm-rerank": sum(fit_seconds.values())}
    summary = summarise(plan, world, drawn, arms, impressions, sessions, usage, INITIAL_ARM)
    requests = {arm: cost.stable() for arm, cost in meter.snapshot().items()}
    misses = {arm: dict(rec.llm_stats) for arm, rec in recommenders.items()}
    return {"users": len(drawn), "pages": pages, "base": base, "arms": summary["arms"], "comparisons": summary["comparisons"],
            "control": INITIAL_ARM, "treatment": FINAL_ARM, "alpha": ALPHA, "llm_requests": requests,
            "reranker_stats": misses, "seconds": time.perf_counter() - started}  # fmt: skip
