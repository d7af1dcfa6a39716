"""The health rule: a model that mostly falls back stops the run; a dead endpoint fails before it."""

from __future__ import annotations

import time

import pytest

from recarena.agents.llm import LLM, Accountant, HealthRule, LLMHealthError, RetryPolicy, build_llm, make_llm, probe_backend
from recarena.agents.llm.openai_backend import OpenAIBackend

FAST = RetryPolicy(max_attempts=1)


def flaky_llm(scripted, failing_every: int, rule: HealthRule | None) -> LLM:
    """An LLM whose every `failing_every`-th request ends in the fallback (a permanent error is not retried)."""
    answers = [ValueError("injected fault") if (k + 1) % failing_every == 0 else "fine" for k in range(500)]
    return LLM(scripted(answers=answers), retry=FAST, accountant=Accountant(health=rule), progress=False)


def test_no_rule_counts_fallbacks_and_never_stops(scripted):
    llm = flaky_llm(scripted, 1, None)
    assert all(not llm.chat("hi").ok for _ in range(50))
    assert llm.accountant.total().requests == 50 and llm.accountant.total().fallbacks == 50


def test_a_dead_model_stops_at_the_first_judged_request_and_every_later_one(scripted):
    llm = flaky_llm(scripted, 1, HealthRule(0.2, min_requests=20))
    for _ in range(19):
        assert not llm.chat("hi").ok  # too few requests to judge
    with pytest.raises(LLMHealthError, match=r"failed 20 of 20 requests.*max-llm-failure-rate 0.2.*injected fault"):
        llm.chat("hi")
    with pytest.raises(LLMHealthError):  # other threads of the batch stop too
        llm.score("hi", ["Yes", "No"])


def test_a_tolerable_failure_rate_completes(scripted):
    llm = flaky_llm(scripted, 6, HealthRule(0.2, min_requests=20, window=50))
    replies = [llm.chat("hi") for _ in range(200)]
    assert sum(not r.ok for r in replies) == 33


def test_the_sliding_window_catches_an_endpoint_that_dies_after_a_healthy_start(scripted):
    answers = ["fine"] * 300 + [ValueError("down")] * 100
    llm = LLM(scripted(answers=answers), retry=FAST, accountant=Accountant(health=HealthRule(0.2, min_requests=20, window=50)),
              progress=False)  # fmt: skip
    for _ in range(300):
        llm.chat("hi")
    with pytest.raises(LLMHealthError, match="of the last 50"):
        for _ in range(100):
            llm.chat("hi")
    assert llm.accountant.health.requests < 300 + 20  # 11 failures in the last 50 pass 20%: long before 20% overall


def test_a_batch_stops_with_the_health_error(scripted):
    llm = flaky_llm(scripted, 1, HealthRule(0.2, min_requests=20))
    with pytest.raises(LLMHealthError):
        llm.chat_many([f"question {k}" for k in range(40)])


def test_build_llm_gives_the_rule_and_probes_while_make_llm_stays_lenient(scripted):
    assert build_llm(scripted(), None).accountant.health.max_failure_rate == 0.2
    assert build_llm(scripted(), None, max_failure_rate=None).accountant.health is None
    assert make_llm(scripted()).accountant.health is None


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match="max_failure_rate"):
        HealthRule(rate)


def test_an_endpoint_where_nothing_listens_fails_fast_in_one_line():
    started = time.perf_counter()
    with pytest.raises(LLMHealthError) as caught:
        build_llm("openai:foo@http://127.0.0.1:9/v1", None)
    assert time.perf_counter() - started < 15
    message = str(caught.value)
    assert "http://127.0.0.1:9/v1" in message and "\n" not in message


def test_the_probe_never_shows_the_key():
    backend = OpenAIBackend("foo", "http://127.0.0.1:9/v1", "sk-secret-probe-key-123")
    with pytest.raises(LLMHealthError) as caught:
        probe_backend(backend, timeout_s=5)
    assert "sk-secret-probe-key-123" not in str(caught.value)


def test_a_real_server_passes_the_probe(llama_server, api_key):
    probe_backend(OpenAIBackend("smollm2", llama_server.base_url, api_key), timeout_s=10)


def test_a_real_server_with_a_wrong_key_fails_the_probe(llama_server):
    with pytest.raises(LLMHealthError, match="start-up check"):
        probe_backend(OpenAIBackend("smollm2", llama_server.base_url, "sk-wrong-key-0000"), timeout_s=10)
