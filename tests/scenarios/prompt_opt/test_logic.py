"""The optimisers' logic on a scripted LLM whose prompts have known rewards (scenarios/prompt_opt/scripted.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from recarena.agents.llm import LLM, SQLiteCache
from recarena.scenarios.prompt_opt.checker import check_optimizer
from recarena.scenarios.prompt_opt.contract import Budget, PromptOptError
from recarena.scenarios.prompt_opt.evaluator import RerankEvaluator
from recarena.scenarios.prompt_opt.methods import METHODS, make_toolkit, optimizer_class
from recarena.scenarios.prompt_opt.po4isr import (
    ArmStats,
    PO4ISRSettings,
    run_bandit,
    top_by_mean,
)
from recarena.scenarios.prompt_opt.recprompt import RecPrompt, RecPromptSettings
from recarena.scenarios.prompt_opt.scripted import (
    KnownRewardBackend,
    make_cases,
    template_with_quality,
)

INITIAL = template_with_quality(0.2)


@pytest.fixture(scope="module")
def cases():
    return make_cases(40, 24, 10, pool=10, seed=3)


def toolkit_for(backend, cache=None):
    llm = LLM(backend, cache=cache, progress=False)
    return make_toolkit(llm, lambda ranker: RerankEvaluator(ranker))


def run(method, backend, cases, budget=120, log_path=None, settings=None, cache=None, seed=0):
    split, _targets = cases
    optimizer = optimizer_class(method)(toolkit_for(backend, cache), settings, seed=seed, log_path=log_path)
    return optimizer.optimize(INITIAL, split["train"], split["valid"], Budget(calls=budget))


def quality(text: str) -> float:
    return float(re.search(r"\[q=([0-9.]+)\]", text).group(1))


def test_recprompt_feeds_the_real_current_and_best_prompt_to_the_optimiser(cases, tmp_path):
    backend = KnownRewardBackend(cases[1], qualities=(0.9, 0.1, 0.5))
    result = run("recprompt", backend, cases, budget=200, settings=RecPromptSettings(steps=3, train_batch=4))
    asked = [text for kind, text in backend.requests if kind == "recprompt"]
    assert len(asked) == 3
    step1, step2 = result.candidates[1], result.candidates[2]
    assert quality(step1.text) == 0.9 and quality(step2.text) == 0.1
    assert step1.valid_mean > step2.valid_mean  # known rewards: the 0.9 prompt is the better one
    current, best = asked[2].split("The BEST prompt so far")
    assert step2.text in current and step1.text not in current  # the current prompt is the last accepted one
    assert step1.text in best and f"{step1.valid_mean:.3f}" in best  # the best so far, with its score
    assert INITIAL not in asked[2]  # not the reference code's initial template fed back every step
    assert result.best.prompt_id == step1.prompt_id


def test_ucb_pulls_the_best_arm_most_and_keeps_true_means():
    means = {"a": 0.2, "b": 0.8, "c": 0.5}
    rng = np.random.default_rng(0)
    stats: dict[str, ArmStats] = {}
    pulled = run_bandit(list(means), stats, 300, lambda arm: float(rng.random() < means[arm]), exploration=1.0)
    counts = {a: pulled.count(a) for a in means}
    assert max(counts, key=counts.get) == "b" and counts["b"] > 150
    for arm, record in stats.items():
        assert record.mean == pytest.approx(np.mean(record.rewards))  # a true mean, not sum of reward/n
        assert record.pulls == counts[arm]
    assert top_by_mean(list(means), stats, 1) == ["b"]


def test_po4isr_ucb_selects_the_best_known_reward_prompt_through_the_llm(cases):
    backend = KnownRewardBackend(cases[1], qualities=(0.1, 0.95, 0.3, 0.2))
    settings = PO4ISRSettings(rounds=1, beam=1, train_batch=6, refinements=2, paraphrases=1, pulls=40, pull_batch=4)
    result = run("po4isr", backend, cases, budget=400, settings=settings)
    bandit = {c.prompt_id: c.extra["bandit"] for c in result.candidates if "bandit" in c.extra}
    assert len(bandit) == 5  # the initial prompt, 2 refinements, 2 paraphrases
    most_pulled = max(bandit, key=lambda p: bandit[p]["pulls"])
    assert quality(next(c.text for c in result.candidates if c.prompt_id == most_pulled)) == 0.95
    assert quality(result.best.text) == 0.95


def test_po4isr_keeps_the_children_of_every_beam_member(cases, tmp_path):
    backend = KnownRewardBackend(cases[1], qualities=(0.6, 0.7, 0.8, 0.5, 0.9, 0.4))
    settings = PO4ISRSettings(rounds=2, beam=2, train_batch=6, refinements=1, paraphrases=1, pulls=6, pull_batch=3)
    log = tmp_path / "po4isr.jsonl"
    result = run("po4isr", backend, cases, budget=1000, log_path=log, settings=settings)
    steps = [json.loads(line) for line in log.read_text().splitlines() if '"key": "step:' in line]
    beam_after_round1 = steps[0]["beam"]
    assert len(beam_after_round1) == 2
    round2_parents = {c.parent for c in result.candidates if c.origin == "po4isr round 2 refine"}
    assert round2_parents == set(beam_after_round1)  # not only the last parent's children
    assert set(steps[1]["pool"]) >= {c.prompt_id for c in result.candidates if c.origin.startswith("po4isr round 2") and c.accepted}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_passes_the_contract_check_and_its_log_replays(method, cases, tmp_path):
    split, targets = cases

    def make(path):
        return optimizer_class(method)(toolkit_for(KnownRewardBackend(targets)), seed=1, log_path=path)

    result = check_optimizer(make, INITIAL, split["train"], split["valid"], Budget(calls=90), tmp_path / "log.jsonl")
    assert result.cost.requests <= 90


def test_budget_cap_stops_cleanly_within_the_budget_and_counts_both_roles(cases, tmp_path):
    backend = KnownRewardBackend(cases[1])
    result = run("recprompt", backend, cases, budget=75, log_path=tmp_path / "log.jsonl")
    assert result.stopped == "budget"
    assert result.cost.requests <= 75
    ranked = sum(kind == "rank" for kind, _ in backend.requests)
    asked = sum(kind != "rank" for kind, _ in backend.requests)
    assert result.cost_by_role["ranker"].requests == ranked and result.cost_by_role["optimiser"].requests == asked
    assert result.cost_by_role["optimiser"].prompt_tokens > 0 and result.cost_by_role["ranker"].completion_tokens > 0
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["key"] == "end" and last["stopped"] == "budget"


def test_best_of_n_spends_the_same_budget_as_the_optimiser(cases):
    optimiser = run("po4isr", KnownRewardBackend(cases[1]), cases, budget=150)
    baseline = run("best-of-n", KnownRewardBackend(cases[1]), cases, budget=150)
    one_draw = 1 + len(cases[0]["valid"])
    for result in (optimiser, baseline):
        assert result.cost.requests <= 150
    assert baseline.cost.requests > 150 - one_draw  # it draws until the next draw would not fit
    assert len(baseline.candidates) > 2 and all(c.origin.startswith("paraphrase") for c in baseline.candidates[1:])


class _Killed(BaseException):
    """Stands for the process being killed mid-run (not an Exception: the LLM layer must not swallow it)."""


def test_a_killed_run_resumes_from_its_log_to_the_same_result(cases, tmp_path):
    fresh = KnownRewardBackend(cases[1])
    whole = run("po4isr", fresh, cases, budget=150, log_path=tmp_path / "whole.jsonl")
    calls = {"n": 0}

    def kill_after_40(kind, text):
        calls["n"] += 1
        return _Killed() if calls["n"] == 40 else None

    log = tmp_path / "killed.jsonl"
    with pytest.raises(_Killed):
        run("po4isr", KnownRewardBackend(cases[1], fail=kill_after_40), cases, budget=150, log_path=log)
    with log.open("a") as handle:
        handle.write('{"seq": 999, "key": "unit:torn')  # a line cut short by the kill
    again = KnownRewardBackend(cases[1])
    resumed = run("po4isr", again, cases, budget=150, log_path=log)
    assert resumed.resumed_units > 0
    assert len(fresh.requests) - 39 <= len(again.requests) < len(fresh.requests)  # finished units came from the log
    assert resumed.as_dict() == whole.as_dict()
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
    assert len(keys) == len(set(keys))  # the log stays consistent: no line twice, no torn line


def test_a_warm_cache_rerun_is_identical_and_asks_the_model_nothing(cases, tmp_path):
    cache = SQLiteCache(tmp_path / "cache.sqlite")
    cold = run("po4isr", KnownRewardBackend(cases[1]), cases, budget=120, cache=cache)
    warm_backend = KnownRewardBackend(cases[1])
    warm = run("po4isr", warm_backend, cases, budget=120, cache=SQLiteCache(tmp_path / "cache.sqlite"))
    assert warm_backend.requests == []
    assert warm.as_dict() == cold.as_dict()  # same spend in requests and tokens though nothing reached the model
    assert warm.cost_by_role["ranker"].cache_hits == warm.cost_by_role["ranker"].requests


def test_bad_inputs_give_one_line_errors(cases):
    split, targets = cases
    optimizer = RecPrompt(toolkit_for(KnownRewardBackend(targets)))
    with pytest.raises(PromptOptError, match=r"initial prompt: required placeholder \{candidates\} is missing"):
        optimizer.optimize("Rank these for {history}.", split["train"], split["valid"], Budget(calls=50))
    with pytest.raises(PromptOptError, match="budget: a budget of zero"):
        optimizer.optimize(INITIAL, split["train"], split["valid"], Budget())
    with pytest.raises(PromptOptError, match="budget: 5 calls cannot evaluate even the initial prompt on 24 validation cases"):
        optimizer.optimize(INITIAL, split["train"], split["valid"], Budget(calls=5))
    with pytest.raises(PromptOptError, match="method: unknown method 'opro'; known: po4isr, recprompt, best-of-n, initial"):
        optimizer_class("opro")


def test_nonsense_and_timeouts_are_counted_misses_and_rejections(cases, tmp_path):
    from recarena.agents.llm import CallTimeout, RetryPolicy

    def nonsense(kind, text, count):
        return "I like turtles." if count % 2 else f"<START>Just rank them. [q=0.9] v{count}<END>"

    def flaky(kind, text):
        return CallTimeout("took too long") if kind == "rank" and "Target film 45;" in text else None

    backend = KnownRewardBackend(cases[1], writer=nonsense, fail=flaky)
    llm = LLM(backend, retry=RetryPolicy(max_attempts=1), progress=False)
    toolkit = make_toolkit(llm, lambda ranker: RerankEvaluator(ranker))
    log = tmp_path / "log.jsonl"
    result = RecPrompt(toolkit, RecPromptSettings(steps=4, train_batch=6), log_path=log).optimize(
        INITIAL, cases[0]["train"], cases[0]["valid"], Budget(calls=200))
    reasons = {c.reason for c in result.candidates if not c.accepted}
    assert "no prompt between <START> and <END> in the answer" in reasons
    assert any("required placeholder {history} is missing" in r for r in reasons)
    assert result.best.prompt_id == "P0" and all(not c.accepted for c in result.candidates[1:])
    assert result.cost_by_role["ranker"].failures == 1  # the timed-out case: a counted failure ...
    initial = result.candidates[0]  # ... scored as the one miss of the initial prompt's validation, and the loop went on
    assert initial.extra["valid_misses"] == 1 and len(initial.valid_scores) == len(cases[0]["valid"])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["prompt_id"] for e in events if e["key"].startswith("candidate:")} == {c.prompt_id for c in result.candidates}


def test_a_token_cap_stops_the_loop_too(cases):
    backend = KnownRewardBackend(cases[1])
    (split, _), toolkit = cases, toolkit_for(backend)
    result = RecPrompt(toolkit).optimize(INITIAL, split["train"], split["valid"], Budget(tokens=12_000))
    assert result.stopped == "budget" and result.steps >= 1
    ranker = result.cost_by_role["ranker"]
    assert ranker.failures == 0  # no format-reminder retries, the one way past the cap (contract.py): so it holds exactly
    assert result.cost.tokens <= 12_000
    # and the loop stopped only when a unit no longer fitted: a validation evaluation is the largest, at the ranker's rate
    assert 12_000 - result.cost.tokens < len(split["valid"]) * ranker.tokens / ranker.requests
