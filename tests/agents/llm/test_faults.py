"""Faults injected for real against a real llama.cpp server: 500s, malformed JSON bodies and
delays past the timeout from a proxy on 127.0.0.1, and the server killed mid-batch and restarted.
In every case the batch completes, faults are counted, and answers are right where the model answered."""

from __future__ import annotations

import threading
import time

import pytest

from recarena.agents.llm import LLMConfig, RetryPolicy, make_llm

OPTIONS = ["Yes", "No"]
PROMPTS = [
    [{"role": "user", "content": f"Would someone who loves {genre} films watch a {genre} film tonight? Yes or No."}]
    for genre in ("comedy", "horror", "western", "musical", "war", "crime")
]


def llm_at(base_url, api_key, **config):
    config.setdefault("progress", False)
    return make_llm(f"openai:smollm2@{base_url}", LLMConfig(api_key=api_key, **config))


@pytest.fixture(scope="module")
def reference(llama_server, api_key):
    """The answers straight from the server, without faults."""
    return llm_at(llama_server.base_url, api_key).score_many(PROMPTS, OPTIONS)


def assert_same_answers(replies, reference):
    for got, want in zip(replies, reference):
        assert got.ok and got.best == want.best
        assert got.probabilities["Yes"] == pytest.approx(want.probabilities["Yes"], abs=0.02)


def test_batch_survives_500s_malformed_json_and_timeouts(fault_proxy, api_key, reference):
    # The timeout leaves a real answer room on a loaded 2-core box (1 s did not: extra timeouts, extra failures);
    # the delayed reply still outlasts it by far.
    fault_proxy.plan = ["500", "malformed", ("delay", 6.0), "500"]
    retry = RetryPolicy(max_attempts=5, base_delay_s=0.05, max_delay_s=0.2)
    llm = llm_at(fault_proxy.base_url, api_key, retry=retry, timeout_s=3.0, concurrency=2)
    replies = llm.score_many(PROMPTS, OPTIONS)
    assert_same_answers(replies, reference)
    total = llm.accountant.total()
    assert total.failures == 4 and total.retries == 4 and total.fallbacks == 0
    assert fault_proxy.served.count("pass") == len(PROMPTS)


def test_a_request_that_keeps_failing_falls_back_and_the_rest_are_right(fault_proxy, api_key, reference, caplog):
    fault_proxy.plan = ["500", "malformed", "500"]  # all three attempts of the first request
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02)
    llm = llm_at(fault_proxy.base_url, api_key, retry=retry, concurrency=1)
    replies = llm.score_many(PROMPTS, OPTIONS, fallback={"Yes": 0.5, "No": 0.5})
    failed = [r for r in replies if not r.ok]
    assert len(failed) == 1 and failed[0].probabilities == {"Yes": 0.5, "No": 0.5} and failed[0].error
    good = [(r, ref) for r, ref in zip(replies, reference) if r.ok]
    assert len(good) == len(PROMPTS) - 1
    assert_same_answers([g for g, _ in good], [ref for _, ref in good])
    total = llm.accountant.total()
    assert (total.failures, total.fallbacks) == (3, 1)
    assert "LLM score fallback" in caplog.text


def test_schema_chat_survives_malformed_body(fault_proxy, api_key):
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: bool

    fault_proxy.plan = ["malformed", "500"]
    llm = llm_at(fault_proxy.base_url, api_key, retry=RetryPolicy(max_attempts=4, base_delay_s=0.01))
    reply = llm.chat("Is the sky blue? Reply in JSON.", Answer, params={"max_tokens": 16})
    assert reply.ok and isinstance(reply.parsed, Answer)
    assert llm.accountant.total().failures == 2  # the two injected faults; the json_schema refusal is not one


def test_server_killed_mid_batch_and_restarted(server_factory, reference):
    server = server_factory(api_key=None)
    retry = RetryPolicy(max_attempts=12, base_delay_s=0.2, max_delay_s=1.0)
    llm = llm_at(server.base_url, None, retry=retry, timeout_s=30.0, concurrency=1)
    prompts = PROMPTS * 2
    results: list = []
    worker = threading.Thread(target=lambda: results.extend(llm.score_many(prompts, OPTIONS)))
    worker.start()
    deadline = time.monotonic() + 60
    while llm.accountant.total().calls < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    time.sleep(0.5)
    server.start()
    worker.join(timeout=120)
    assert len(results) == len(prompts)
    assert_same_answers(results, reference * 2)
    total = llm.accountant.total()
    assert total.failures >= 1 and total.fallbacks == 0 and server.starts == 2
