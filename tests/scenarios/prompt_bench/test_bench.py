"""The fixed ranking protocols: seeded cases without leakage, metrics, misses, position bias,
baselines on the same candidates, the prompt-bench scenario, and the real embedded SmolLM2."""

from __future__ import annotations

import re

import numpy as np
import pytest
from recarena.agents.llm import LLM, RetryPolicy
from recarena.agents.llm.scripted import ScriptedBackend
from recarena.recommenders.llm_prompt import LISTWISE, POINTWISE
from recarena.scenarios.checker import (
    check_report_renders,
    check_scenario,
    check_validation_names_field,
)
from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.prompt_bench.protocols import (
    LLMCaseRanker,
    build_cases,
    case_metrics,
    evaluate_ranker,
    fit_baselines,
    po4isr_splits,
)
from recarena.scenarios.prompt_bench.scenario import PromptBenchConfig, PromptBenchScenario
from recarena.simulator.data.dataset import per_user
from recarena.simulator.data.splits import leave_one_out





def scripted_llm(**kwargs) -> LLM:
    return LLM(ScriptedBackend(**kwargs), retry=RetryPolicy(max_attempts=1), progress=False)


@pytest.fixture(scope="module")
def split(ml100k):
    return leave_one_out(ml100k)


def oracle_answer(cases):
    """A scripted LLM that knows each case's target: lists the target's label first (listwise)."""
    targets = {case.history_text + "|" + c.line: c for case in cases for c in case.candidates if c.item == case.target}

    def answer(request):
        prompt = request.messages[0]["content"]
        lines = re.findall(r"^C\d+: .*$", prompt, re.MULTILINE)
        target = next(c for key, c in targets.items() if key.split("|")[0] in prompt and key.split("|")[1] in lines)
        return ", ".join([target.label] + [line.split(":")[0] for line in lines if not line.startswith(target.label + ":")])

    return answer


def oracle_score(cases):
    """Pointwise: Yes is likely only for the target's text."""
    targets = {(case.history_text, c.text) for case in cases for c in case.candidates if c.item == case.target}

    def score(request):
        prompt = request.messages[0]["content"]
        hit = any(history in prompt and f"Candidate movie:\n{text}\n" in prompt for history, text in targets)
        return {"Yes": -0.1 if hit else -3.0, "No": -1.0}

    return score


# --------------------------------------------------------------------------------------------- cases
def test_recprompt_cases_have_ten_shuffled_candidates_one_positive_and_are_seeded(split, ml100k):
    cases = build_cases(split, "recprompt", 40, seed=0)
    assert len(cases) == 40 and build_cases(split, "recprompt", 40, seed=0) == cases
    assert build_cases(split, "recprompt", 40, seed=1) != cases
    every_item = per_user(ml100k.interactions, ml100k.n_users)
    for case in cases:
        items = case.candidate_items
        assert len(items) == 10 and len(set(items)) == 10 and items.count(case.target) == 1
        assert [c.label for c in case.candidates] == [f"C{i}" for i in range(1, 11)]
        assert not set(items) - {case.target} & set(every_item[case.user].tolist())  # negatives: never interacted with
    positions = [case.target_position for case in cases]
    assert len(set(positions)) > 4  # shuffled: the target is not always shown at the same place


def test_prompts_see_nothing_held_out(split):
    test_items = dict(zip(split.test["user"].tolist(), split.test["item"].tolist()))
    valid_items = dict(zip(split.valid["user"].tolist(), split.valid["item"].tolist()))
    for case in build_cases(split, "po4isr", 30, seed=2, part="train"):
        shown = set(case.history) | set(case.candidate_items)
        assert test_items.get(case.user) not in shown and valid_items.get(case.user) not in shown
    for case in build_cases(split, "recprompt", 30, seed=2, part="test"):
        assert case.target == test_items[case.user] and case.target not in case.history
        train_and_valid = split.known_before("test")
        assert list(case.history) == train_and_valid[train_and_valid["user"] == case.user]["item"].tolist()


def test_po4isr_splits_are_disjoint_and_validated(split):
    parts = po4isr_splits(split, n_train=50, n_valid=100, n_test=60, seed=0)
    users = {part: {c.user for c in cases} for part, cases in parts.items()}
    assert [len(users[p]) for p in ("train", "valid", "test")] == [50, 100, 60]
    assert not (users["train"] & users["valid"]) and not (users["train"] & users["test"]) and not (users["valid"] & users["test"])
    assert all(len(c.candidates) == 20 for cases in parts.values() for c in cases)
    with pytest.raises(ScenarioError, match="n_train"):
        po4isr_splits(split, n_train=70)
    with pytest.raises(ScenarioError, match="protocol"):
        build_cases(split, "pairwise", 3, seed=0)


def test_case_metrics():
    assert case_metrics(1, 10) == pytest.approx({**case_metrics(1, 10), "auc": 1.0, "mrr": 1.0, "ndcg@5": 1.0, "hr@1": 1.0})
    last = case_metrics(10, 10)
    assert (last["auc"], last["mrr"], last["ndcg@5"], last["hr@10"]) == (0.0, 0.1, 0.0, 1.0)
    assert case_metrics(3, 20)["ndcg@5"] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("mode", ["listwise", "pointwise"])
def test_an_llm_that_ranks_the_target_first_scores_mrr_one(split, mode):
    cases = build_cases(split, "recprompt", 12, seed=0)
    llm = scripted_llm(default=oracle_answer(cases), default_score=oracle_score(cases))
    result = evaluate_ranker(LLMCaseRanker(llm, LISTWISE if mode == "listwise" else POINTWISE, mode), cases)
    assert result.metrics == pytest.approx({"auc": 1.0, "mrr": 1.0, "ndcg@5": 1.0, "ndcg@10": 1.0})
    assert result.misses == 0 and result.calls == (12 if mode == "listwise" else 120)
    assert result.tokens["prompt"] > 0


def test_nonsense_answers_are_counted_misses_and_an_echo_shows_position_bias(split):
    cases = build_cases(split, "po4isr", 10, seed=0)
    nonsense = evaluate_ranker(LLMCaseRanker(scripted_llm(default="As an AI, I love all movies."), LISTWISE, "listwise"), cases)
    assert nonsense.misses == 10 and nonsense.calls == 30 and nonsense.retries == 20 and nonsense.miss_rate == 1.0
    echo = scripted_llm(default=lambda r: ", ".join(re.findall(r"^(C\d+):", r.messages[0]["content"], re.MULTILINE)))
    biased = evaluate_ranker(LLMCaseRanker(echo, LISTWISE, "listwise"), cases)
    assert biased.misses == 0 and biased.position_bias["kept_order"] == 1.0 and biased.position_bias["kept_first"] == 1.0
    assert biased.metrics["hr@1"] == np.mean([c.target_position == 1 for c in cases])
    with pytest.raises(ScenarioError, match="not a permutation"):
        evaluate_ranker(lambda case: case.candidate_items[:3], cases)


def test_baselines_rerank_the_same_candidates_and_pop_beats_random(split):
    cases = build_cases(split, "recprompt", 150, seed=0)
    random_ranker, pop = fit_baselines(split, ["pop"], seed=0)
    floor, popular = evaluate_ranker(random_ranker, cases), evaluate_ranker(pop, cases)
    assert abs(floor.metrics["auc"] - 0.5) < 0.08
    assert popular.metrics["auc"] > floor.metrics["auc"] + 0.15


# --------------------------------------------------------------------------------------------- the scenario
def test_prompt_bench_validation_names_the_field():
    check_validation_names_field(PromptBenchConfig, "modes", ["pairwise"])
    check_validation_names_field(PromptBenchConfig, "baselines", "pop,nope")
    check_validation_names_field(PromptBenchConfig, "users", 0)
    check_validation_names_field(PromptBenchConfig, "max_retries", 3)


def test_prompt_bench_rejects_a_template_without_history(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("Rank {candidates}")
    message = check_validation_names_field(PromptBenchConfig, "template", bad)
    assert "{history} is missing" in message and "t.txt" in message


@pytest.mark.requires("llama_cpp")
def test_prompt_bench_with_the_real_embedded_smollm2_pointwise(tmp_path, require):
    """A RecPrompt case through the real SmolLM2 (pointwise), beside random and pop.

    One user and short histories keep the prompts (one full evaluation per candidate) cheap on 2 cores;
    seeded reproducibility is checked with the scripted LLM above, not by a second real run."""
    config = PromptBenchConfig(protocol="recprompt", users=1, modes=["pointwise"], llm="embedded", baselines="pop",
                               history_len=3, out=tmp_path / "bench", progress=False)  # fmt: skip
    results = check_scenario(PromptBenchScenario(), config, rerun=False)
    rows = {row["name"]: row for row in results["tables"]["recprompt"]["rows"]}
    assert list(rows) == ["random", "pop", "llm pointwise"]
    llm = rows["llm pointwise"]
    assert llm["cases"] == 1 and llm["calls"] == 10 and llm["misses"] == 0 and llm["failed_calls"] == 0
    assert llm["tokens"]["prompt"] > 10 * 40  # each call saw a real prompt
    assert 0.0 <= llm["metrics"]["auc"] <= 1.0 and results["timings"]["llm"]["calls"] == 10
    assert (tmp_path / "bench" / "cases.csv").is_file()
    require("chromium")
    check_report_renders(results["report"])
