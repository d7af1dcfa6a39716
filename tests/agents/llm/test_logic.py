"""The layer's logic around backends, with a scripted fake backend: retries, timeouts, repair,
fallbacks, accounting, bounded concurrency, cache, async and the conformance checker."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time

import pytest
from pydantic import BaseModel, Field

from recarena.agents.llm import (
    LLM, Accountant, CallTimeout, ConformanceError, Price, RetryPolicy, ScoringUnsupported, SQLiteCache,
    TransientBackendError, check_llm,
)

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002)


class Pick(BaseModel):
    movie: str
    stars: int = Field(ge=1, le=5)


def make(backend, **kwargs) -> LLM:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("progress", False)
    return LLM(backend, **kwargs)


def test_transient_faults_are_retried_and_counted(scripted):
    backend = scripted(answers=[TransientBackendError("503"), ConnectionError("reset"), "hello"])
    llm = make(backend)
    reply = llm.chat("hi")
    assert reply.ok and reply.text == "hello"
    total = llm.accountant.total()
    assert (total.calls, total.failures, total.retries, total.fallbacks) == (3, 2, 2, 0)


def test_permanent_error_is_not_retried_and_falls_back(scripted):
    backend = scripted(answers=[ValueError("bad request")])
    llm = make(backend)
    reply = llm.chat("hi", fallback="default text")
    assert not reply.ok and reply.parsed == "default text" and "bad request" in reply.error
    assert len(backend.requests) == 1
    assert llm.accountant.total().fallbacks == 1


def test_retries_exhausted_gives_the_fallback_not_an_exception(scripted):
    backend = scripted(default=TransientBackendError("still down"))
    llm = make(backend)
    reply = llm.chat("hi", Pick, fallback=Pick(movie="none", stars=1))
    assert reply.parsed == Pick(movie="none", stars=1) and not reply.ok
    assert len(backend.requests) == FAST.max_attempts


def test_backoff_is_exponential_with_bounded_jitter():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=1.0)
    rng = random.Random(0)
    for retry_index, ceiling in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        delays = [policy.delay(retry_index, rng) for _ in range(200)]
        assert 0.0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # jitter actually spreads over the range
    assert RetryPolicy(base_delay_s=1.0, jitter=0.0).delay(2, rng) == 4.0


def test_slow_call_times_out_and_is_retried(scripted):
    backend = scripted(answers=[lambda request: time.sleep(0.5) or "late", "fast"])
    llm = make(backend, timeout_s=0.1)
    reply = llm.chat("hi")
    assert reply.ok and reply.text == "fast"
    assert llm.accountant.total().failures == 1


def test_invalid_answer_gets_one_repair(scripted):
    backend = scripted(answers=['{"movie": "Heat", "stars": 9}', '{"movie": "Heat", "stars": 4}'])
    llm = make(backend)
    reply = llm.chat("rate Heat", Pick)
    assert reply.ok and reply.repaired and reply.parsed == Pick(movie="Heat", stars=4)
    repair_turn = backend.requests[1].messages[-1]["content"]
    assert "stars" in repair_turn and "JSON schema" in repair_turn
    assert backend.requests[1].messages[-2] == {"role": "assistant", "content": '{"movie": "Heat", "stars": 9}'}
    assert llm.accountant.total().repairs == 1


def test_fallback_after_failed_repair_is_counted_and_logged_with_raw_answer(scripted, caplog):
    backend = scripted(answers=["I think four stars", "Still prose, sorry"])
    llm = make(backend)
    with caplog.at_level(logging.WARNING, logger="recarena.agents.llm"):
        reply = llm.chat("rate Heat", Pick, fallback=lambda raw, reason: Pick(movie="?", stars=3))
    assert not reply.ok and reply.parsed == Pick(movie="?", stars=3) and "not valid JSON" in reply.error
    assert "Still prose, sorry" in caplog.text
    [event] = llm.accountant.fallback_events
    assert event.raw_answer == "Still prose, sorry" and event.kind == "chat"


def test_json_schema_dict_and_fenced_json(scripted):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    llm = make(scripted(answers=['Sure:\n```json\n{"ok": true}\n```']))
    assert llm.chat("x", schema).parsed == {"ok": True}
    with pytest.raises(ValueError, match="unsupported JSON-schema keyword"):
        llm.chat("x", {"type": "object", "patternProperties": {}})


def test_score_renormalises_and_falls_back_to_generation(scripted):
    llm = make(scripted(default_score={"Yes": math.log(0.3), "No": math.log(0.1)}))
    reply = llm.score("Watch?", ["Yes", "No"])
    assert reply.probabilities == pytest.approx({"Yes": 0.75, "No": 0.25})
    assert reply.mass == pytest.approx(0.4)

    backend = scripted(default_score=ScoringUnsupported("no logprobs"), default='{"answer": "No"}')
    llm = make(backend)
    reply = llm.score("Watch?", ["Yes", "No"])
    assert reply.method == "generation" and reply.probabilities == {"Yes": 0.0, "No": 1.0}
    assert llm.score("Again?", ["Yes", "No"]).method == "generation"
    assert len([r for r in backend.requests if hasattr(r, "options")]) == 1  # unsupported is remembered
    assert llm.accountant.total().score_by_generation == 2


def test_score_fallback_is_uniform_by_default(scripted):
    llm = make(scripted(default_score=TransientBackendError("down")))
    reply = llm.score("Watch?", ["1", "2", "3", "4"])
    assert not reply.ok and reply.probabilities == {o: 0.25 for o in "1234"}
    assert llm.accountant.total().fallbacks == 1
    with pytest.raises(ValueError, match="distinct"):
        llm.score("x", ["Yes", "Yes"])


def test_concurrency_is_bounded_and_batches_keep_order(scripted):
    """Each call waits at a barrier of 3, which opens only when 3 calls are in flight at once (a bound under 3
    breaks it: the calls fail), so the peak reaches 3 without depending on timing. Each wave then holds on a
    moment, in which a client that let a 4th call through would show it (the peak would be 4)."""
    wave = threading.Barrier(3, timeout=20)
    meet = [True]

    def answer(request):
        if meet[0]:
            wave.wait()
            time.sleep(0.01)
        return request.messages[0]["content"].upper()

    backend = scripted(default=answer, max_concurrency=8)
    llm = make(backend, concurrency=3)
    prompts = [f"prompt {i}" for i in range(24)]  # 8 waves of 3
    replies = llm.chat_many(prompts)
    assert [r.text for r in replies] == [p.upper() for p in prompts]
    assert backend.peak_in_flight == 3
    meet[0] = False
    async_replies = asyncio.run(llm.achat_many(prompts[:5]))
    assert [r.text for r in async_replies] == [p.upper() for p in prompts[:5]]


def test_accounting_per_component_with_cost(scripted):
    accountant = Accountant(prices={"scripted-1": Price(prompt_per_million=2.0, completion_per_million=10.0)})
    llm = make(scripted(), accountant=accountant)
    users, recommender = llm.for_component("users"), llm.for_component("recommender")
    users.chat("a")
    users.chat("b")
    recommender.chat("c")
    report = accountant.report()
    assert report["by_component"]["users"]["calls"] == 2
    assert report["by_component"]["recommender"]["prompt_tokens"] == 10
    assert report["total"]["cost_usd"] == pytest.approx(3 * (10 * 2.0 + 5 * 10.0) / 1e6)
    assert "users" in accountant.table()


def test_warm_cache_makes_no_backend_calls(scripted, tmp_path):
    path = tmp_path / "cache.sqlite"
    cold_backend = scripted(default=lambda r: '{"movie": "%s", "stars": 4}' % r.messages[0]["content"])
    cold = make(cold_backend, cache=SQLiteCache(path))
    prompts = ["Heat", "Alien", "Heat"]
    first = [cold.chat(p, Pick) for p in prompts] + [cold.score(p, ["Yes", "No"]) for p in prompts]
    warm_backend = scripted(default=AssertionError("the warm run must not call the model"))
    warm = make(warm_backend, cache=SQLiteCache(path))
    second = [warm.chat(p, Pick) for p in prompts] + [warm.score(p, ["Yes", "No"]) for p in prompts]
    assert [r.parsed for r in first[:3]] == [r.parsed for r in second[:3]]
    assert [r.probabilities for r in first[3:]] == [r.probabilities for r in second[3:]]
    assert warm_backend.requests == [] and warm.accountant.total().calls == 0
    assert warm.accountant.total().cache_hits == 6 and warm.cache.stats()["hits"] == 6
    other_seed = warm.chat("Heat", Pick, params={"seed": 1}, fallback=None)
    assert not other_seed.cached  # the seed is part of the key


def test_check_llm_passes_a_correct_backend_and_fails_a_broken_one(scripted):
    good = scripted(default='{"answer": "yes", "confidence": 4}')
    summary = check_llm(make(good))
    assert summary["structured_ok"] and set(summary["score"]) == {"Yes", "No"}

    broken = scripted(default="", default_score={"Ja": -0.1, "Nein": -2.0})
    with pytest.raises(ConformanceError, match="score keys"):
        check_llm(make(broken))


def test_call_timeout_is_transient():
    from recarena.agents.llm import is_transient

    assert is_transient(CallTimeout("x")) and is_transient(TimeoutError()) and not is_transient(ValueError())
