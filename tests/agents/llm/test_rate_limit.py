"""Requests- and tokens-per-minute limits, in simulated time (no real sleeping)."""

from __future__ import annotations

import pytest

from recarena.agents.llm import LLM
from recarena.agents.llm.factory import LLMConfig, make_llm
from recarena.agents.llm.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_request_limit_spaces_calls_after_the_first_minutes_burst():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock, sleep=clock.sleep)
    for _ in range(60):  # a full bucket: one minute's worth goes out at once
        limiter.acquire()
    assert clock.now == 0.0
    for _ in range(30):
        limiter.acquire()
    assert clock.now == pytest.approx(30.0)  # then one per second
    assert limiter.waited_s == pytest.approx(30.0)


def test_token_debt_holds_the_next_call_until_it_is_paid():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.charge(1200)  # twice the minute's budget: 600 tokens of debt
    limiter.acquire()
    assert clock.now == pytest.approx(60.0)


def test_no_limits_never_waits():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
        limiter.charge(10_000)
    assert clock.now == 0.0 and not limiter.active


def test_bad_limits_are_refused_by_name():
    with pytest.raises(ValueError, match="tokens_per_minute"):
        RateLimiter(tokens_per_minute=0)
    with pytest.raises(ValueError, match="requests_per_minute"):
        LLMConfig(requests_per_minute=-1)


def test_the_llm_layer_waits_for_its_limiter_and_charges_real_tokens(scripted):
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=6, tokens_per_minute=60, clock=clock, sleep=clock.sleep)
    llm = LLM(scripted(default="fine"), rate_limiter=limiter, progress=False)
    for i in range(5):
        assert llm.chat(f"question {i}").text == "fine"
    # Each scripted call uses 15 tokens: 5 calls = 75, the minute's 60 plus 15 of debt, no wait yet.
    assert clock.now == 0.0
    llm.chat("question 5")  # within 6 requests, but it waits until the 15-token debt is refilled
    assert clock.now == pytest.approx(15.0)
    llm.chat("question 6")  # the 7th request waits for the request bucket too
    assert clock.now > 15.0


def test_make_llm_builds_the_limits_from_its_config(scripted):
    llm = make_llm(scripted(), LLMConfig(requests_per_minute=120, tokens_per_minute=90_000))
    limiter = llm._shared.limiter
    assert (limiter.requests_per_minute, limiter.tokens_per_minute) == (120, 90_000)
