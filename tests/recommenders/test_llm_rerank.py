"""The LLM reranker: templates, the one parser (fed adversarial answers), bounded retries, misses,
seeded shuffling, position bias, and the recommender contract with a scripted LLM."""

from __future__ import annotations

import re

import numpy as np
import pytest
from recarena.agents.llm import LLM, RetryPolicy, TransientBackendError
from recarena.agents.llm.scripted import ScriptedBackend
from recarena.recommenders import (
    ParamsError,
    RecommenderError,
    build_recommender,
    check_recommender,
    parse_assignments,
)
from recarena.recommenders.llm_parse import parse_ranking
from recarena.recommenders.llm_prompt import (
    LISTWISE,
    POINTWISE,
    Candidate,
    PromptTemplate,
    TemplateError,
    template_problems,
)
from recarena.recommenders.llm_ranking import rank_candidates




def scripted_llm(**kwargs) -> tuple[LLM, ScriptedBackend]:
    timeout_s = kwargs.pop("timeout_s", 5.0)
    backend = ScriptedBackend(**kwargs)
    return LLM(backend, retry=RetryPolicy(max_attempts=1), progress=False, timeout_s=timeout_s), backend


def labels_in(request) -> list[str]:
    """The candidate labels of the first prompt of a request, in the order shown."""
    return re.findall(r"^(C\d+):", request.messages[0]["content"], re.MULTILINE)


CANDIDATES = [
    Candidate(10, "C1", "Toy Story", 1995, ("Animation",)),
    Candidate(11, "C2", "Usual Suspects, The", 1995, ("Crime",)),
    Candidate(12, "C3", "Heat", 1995, ("Action",)),
    Candidate(13, "C4", "Apollo 13", 1995, ("Drama",)),
    Candidate(14, "C5", "M", 1931, ("Crime",)),
]


# --------------------------------------------------------------------------------------------- templates
def test_template_lists_placeholders_and_renders_values_verbatim():
    template = PromptTemplate('Seen:\n{history}\nPick from {candidates}. Reply as {{"ids": [...]}} or {"ids": []}.')
    assert template.placeholders == ("history", "candidates")
    text = template.render(history="- A {candidates} film", candidates="C1: X")
    assert text == 'Seen:\n- A {candidates} film\nPick from C1: X. Reply as {"ids": [...]} or {"ids": []}.'


@pytest.mark.parametrize(("text", "problem"), [
    ("Rank {candidates} please", "required placeholder {history} is missing"),
    ("History {history} only", "required placeholder {candidates} is missing"),
    ("{history} {candidates} {histroy}", "unknown placeholder {histroy}"),
    ("   ", "empty"),
])  # fmt: skip
def test_template_without_a_required_placeholder_is_a_clear_error(text, problem):
    with pytest.raises(TemplateError, match=re.escape(problem)):
        PromptTemplate(text, name="mine")
    assert any(problem in p for p in template_problems(text))


def test_render_refuses_a_missing_or_unexpected_value_but_accepts_an_optional_profile():
    with pytest.raises(TemplateError, match=r"no value for placeholder \{candidates\}"):
        LISTWISE.render(history="- A")
    with pytest.raises(TemplateError, match="'genre' fills no placeholder"):
        LISTWISE.render(history="- A", candidates="C1: B", genre="x")
    assert "{user_profile}" not in LISTWISE.render(history="- A", candidates="C1: B", user_profile="a nurse")
    with_profile = PromptTemplate("User: {user_profile}\n{history}\n{candidates}")
    with pytest.raises(TemplateError, match="user_profile"):
        with_profile.render(history="- A", candidates="C1: B")
    assert with_profile.render(history="h", candidates="c", user_profile="a nurse") == "User: a nurse\nh\nc"


def test_with_text_validates_and_versions():
    child = LISTWISE.with_text(LISTWISE.text + "\nThink about genres.")
    assert (child.name, child.version, child.parent) == ("listwise", LISTWISE.version + 1, LISTWISE.digest)
    assert child.digest != LISTWISE.digest
    with pytest.raises(TemplateError, match="history"):
        LISTWISE.with_text("Rank {candidates}")


# --------------------------------------------------------------------------------------------- the parser
@pytest.mark.parametrize(("answer", "first", "counts"), [
    ("C3, C1, C2, C5, C4", [12, 10, 11, 14, 13], (5, 0, 0, 0)),
    ("[4] [2] [1] [3] [5]", [13, 11, 10, 12, 14], (5, 0, 0, 0)),
    ("4.\n2.\n1.\n", [13, 11, 10], (3, 2, 0, 0)),
    ("Ranking: 3 > 1 > 2", [12, 10, 11], (3, 2, 0, 0)),
    ("candidate 5 is best, then Candidate #2", [14, 11], (2, 3, 0, 0)),
    ("1. The Usual Suspects (1995)\n2. Toy Story\n3. Apolo 13\n4. Casablanca", [11, 10, 13], (3, 2, 0, 1)),
    ("Heat, Toy Story, Heat, M (1931)", [12, 10, 14], (3, 2, 1, 0)),
    ("C2 C2 C2 C9 C0 C1", [11, 10], (2, 3, 2, 2)),
    ("**C1**: Toy Story (1995)\n**C4**: Apollo 13 (1995)", [10, 13], (2, 3, 0, 0)),
    ("I'd recommend toy story and then HEAT.", [10, 12], (2, 3, 0, 0)),
    ("- Toy Storey\n- Heatt\n- Usual Suspects", [10, 12, 11], (3, 2, 0, 0)),
])  # fmt: skip
def test_parse_ranking_reads_ids_and_titles_and_counts_what_it_dropped(answer, first, counts):
    parsed = parse_ranking(answer, CANDIDATES, np.random.default_rng(0))
    assert list(parsed.items[: len(first)]) == first
    assert sorted(parsed.items) == [10, 11, 12, 13, 14]  # always a full ranking, each candidate once
    assert (parsed.parsed, parsed.missing, parsed.duplicates, parsed.unknown) == counts
    assert parsed.parsed_any


@pytest.mark.parametrize("answer", ["", "I cannot help with that.", "Yes", "C99, C42", "{'ranking': []}", "\x00\ufffd" * 50,
                                    "1995 was a good year (1995)", "genres: Animation, Crime"])
def test_an_unparseable_answer_is_a_miss_with_a_seeded_random_order(answer):
    parsed = parse_ranking(answer, CANDIDATES, np.random.default_rng(1))
    assert not parsed.parsed_any and parsed.missing == len(CANDIDATES) and sorted(parsed.items) == [10, 11, 12, 13, 14]
    again = parse_ranking(answer, CANDIDATES, np.random.default_rng(1))
    assert again.items == parsed.items


def test_missing_candidates_are_appended_in_a_seeded_random_order():
    orders = {parse_ranking("C2", CANDIDATES, np.random.default_rng(seed)).items for seed in range(12)}
    assert all(order[0] == 11 for order in orders)
    assert len(orders) > 3  # the tail depends on the seed
    assert parse_ranking("C2", CANDIDATES, np.random.default_rng(5)).items == parse_ranking("C2", CANDIDATES, np.random.default_rng(5)).items


def test_fuzzy_matching_respects_its_threshold():
    assert parse_ranking("Apolo 13", CANDIDATES, np.random.default_rng(0), fuzzy_threshold=0.8).parsed == 1
    assert parse_ranking("Apolo 13", CANDIDATES, np.random.default_rng(0), fuzzy_threshold=0.99).parsed == 0


# --------------------------------------------------------------------------------------------- ranking with an LLM
def test_unreadable_answers_are_retried_at_most_twice_with_a_format_reminder_then_count_as_a_miss():
    llm, backend = scripted_llm(default="I love movies!")
    outcome = rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert outcome.miss and outcome.calls == 3 and outcome.retries == 2 and len(backend.requests) == 3
    assert "could not be read" in backend.requests[1].messages[-1]["content"]
    assert backend.requests[1].messages[-2] == {"role": "assistant", "content": "I love movies!"}
    assert not outcome.kept_order and sorted(outcome.items) == [10, 11, 12, 13, 14]
    llm, backend = scripted_llm(default="nonsense")
    assert rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0), max_retries=0).calls == 1
    with pytest.raises(RecommenderError, match="max_retries"):
        rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0), max_retries=5)


def test_a_readable_retry_is_not_a_miss():
    llm, backend = scripted_llm(answers=["hmm", "C4, C5"], default="never asked")
    outcome = rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert len(backend.requests) == 2
    assert not outcome.miss and outcome.calls == 2 and outcome.retries == 1 and outcome.items[:2] == (13, 14)


def test_a_timeout_or_dead_backend_is_a_counted_miss_not_an_exception():
    llm, _ = scripted_llm(default="C1", delay_s=0.5, timeout_s=0.05)
    outcome = rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert outcome.miss and outcome.failed_calls == 1 and outcome.calls == 1
    llm, _ = scripted_llm(default_score=TransientBackendError("down"))
    outcome = rank_candidates(llm, POINTWISE, "pointwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert outcome.miss and outcome.failed_calls == len(CANDIDATES) and sorted(outcome.items) == [10, 11, 12, 13, 14]


def test_pointwise_ranks_by_the_probability_of_yes():
    liked = {"Heat": -0.1, "Toy Story": -0.5, "Apollo 13": -1.0}

    def yes_no(request):
        text = request.messages[0]["content"]
        yes = next((v for title, v in liked.items() if f"{title} (" in text), -3.0)
        return {"Yes": yes, "No": -1.0}

    llm, backend = scripted_llm(default_score=yes_no)
    outcome = rank_candidates(llm, POINTWISE, "pointwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert outcome.items[:3] == (12, 10, 13) and outcome.calls == 5 and not outcome.miss
    assert all("Yes or No" in r.messages[0]["content"] for r in backend.requests)


def test_position_bias_is_detected():
    llm, _ = scripted_llm(default=lambda request: ", ".join(labels_in(request)))  # echoes the order shown
    echo = rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert echo.kept_order and echo.kept_first
    llm, _ = scripted_llm(default=lambda request: ", ".join(reversed(labels_in(request))))
    reverse = rank_candidates(llm, LISTWISE, "listwise", "- A", CANDIDATES, np.random.default_rng(0))
    assert not reverse.kept_order and not reverse.kept_first


# --------------------------------------------------------------------------------------------- the recommender
@pytest.mark.parametrize("mode", ["listwise", "pointwise"])
def test_llm_rerank_passes_the_recommender_contract_with_a_scripted_llm(tiny_world, mode):
    llm, backend = scripted_llm(default=lambda request: ", ".join(reversed(labels_in(request))))
    model = build_recommender("llm-rerank", {"pool": 5, "mode": mode}).attach_llm(llm)
    check_recommender(model, tiny_world)
    assert model.llm_stats["requests"] > 0 and model.llm_stats["misses"] == 0 and len(backend.requests) > 0


def test_llm_rerank_puts_the_llms_order_on_top_of_the_base_order_and_shuffles_per_user(tiny_world):
    llm, backend = scripted_llm(default=lambda request: ", ".join(reversed(labels_in(request))))
    model = build_recommender("llm-rerank", {"pool": 6, "mode": "listwise", "seed": 3}).attach_llm(llm).fit(tiny_world)
    users = np.arange(8)
    page = model.recommend(users, k=6)
    base = model.base_model.recommend(users, k=6)
    for row, request in zip(range(len(users)), backend.requests):
        assert set(page.items[row]) == set(base.items[row])  # the pool is the base model's top unseen items
    shown = [tuple(labels_in(r)) for r in backend.requests]
    presented = [re.findall(r"^C\d+: (.*)$", r.messages[0]["content"], re.MULTILINE) for r in backend.requests]
    assert all(len(s) == 6 for s in shown)
    assert len({tuple(p) for p in presented}) > 1  # pop proposes the same pool to everyone; the shuffle differs per user
    again = build_recommender("llm-rerank", {"pool": 6, "mode": "listwise", "seed": 3}).attach_llm(scripted_llm(
        default=lambda request: ", ".join(reversed(labels_in(request))))[0]).fit(tiny_world)
    assert np.array_equal(again.recommend(users, k=6).items, page.items)  # seeded


def test_llm_rerank_bad_settings_fail_at_the_edge(tmp_path):
    params = parse_assignments(["mode=listwise", "pool=5", "base=bpr"])
    assert build_recommender("llm-rerank", params).params.mode == "listwise"
    with pytest.raises(ParamsError, match="mode"):
        build_recommender("llm-rerank", {"mode": "pairwise"})
    with pytest.raises(RecommenderError, match="unknown recommender 'nope'"):
        build_recommender("llm-rerank", {"base": "nope"})
    with pytest.raises(ParamsError, match="max_retries"):
        build_recommender("llm-rerank", {"max_retries": 3})
    bad = tmp_path / "mine.txt"
    bad.write_text("Rank these: {candidates}")
    with pytest.raises(TemplateError, match=r"mine.txt.*\{history\} is missing"):
        build_recommender("llm-rerank", {"template": str(bad)})
    with pytest.raises(RecommenderError, match="not found"):
        build_recommender("llm-rerank", {"template": str(tmp_path / "absent.txt")})
