"""``check_llm``: the conformance check every backend (and LLM wrapper) must pass."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

from pydantic import BaseModel

from .client import LLM
from .protocol import Backend, ChatModel, ChatReply, ScoreReply


class ConformanceError(AssertionError):
    """A backend or chat model broke the contract; the message lists every failed check."""


class _Verdict(BaseModel):
    """The probe schema: an enum and a bounded integer, which every structured mode can express."""

    answer: Literal["yes", "no"]
    confidence: int


_PROBE = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Is water wet? Reply in JSON with answer yes or no and confidence 1 to 5."},
]
_QUESTION = [{"role": "user", "content": "Is the sky blue on a clear day? Answer Yes or No."}]


def check_llm(model: ChatModel | Backend, *, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run the contract checks; return a summary or raise ConformanceError listing the failures.

    Checks: free-text chat returns text; schema chat returns a validated instance or a flagged,
    explained fallback; score returns probabilities over exactly the options that sum to 1 and are
    reproducible at temperature 0; batched and async calls agree with single calls.
    """
    llm = LLM(model, timeout_s=timeout_s, progress=False) if isinstance(model, Backend) else model
    problems: list[str] = []

    def expect(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    expect(isinstance(llm, ChatModel), f"{type(llm).__name__} does not implement the ChatModel protocol")
    if problems:
        raise ConformanceError("; ".join(problems))

    text = llm.chat(_QUESTION, params={"max_tokens": 16})
    expect(isinstance(text, ChatReply), "chat() must return a ChatReply")
    expect(text.ok and isinstance(text.text, str) and text.text.strip() != "", f"free-text chat gave no text: {text!r}")
    expect(text.parsed is None, "free-text chat must leave parsed=None")

    sentinel = _Verdict(answer="no", confidence=0)
    structured = llm.chat(_PROBE, _Verdict, fallback=sentinel, params={"max_tokens": 48})
    if structured.ok:
        expect(isinstance(structured.parsed, _Verdict), f"schema chat parsed {type(structured.parsed).__name__}, not _Verdict")
    else:
        expect(structured.parsed is sentinel and bool(structured.error), "a failed schema chat must return the fallback and an error")

    options = ["Yes", "No"]
    first = llm.score(_QUESTION, options)
    expect(isinstance(first, ScoreReply), "score() must return a ScoreReply")
    expect(list(first.probabilities) == options, f"score keys {list(first.probabilities)} != options {options}")
    total = sum(first.probabilities.values())
    expect(math.isclose(total, 1.0, abs_tol=1e-6), f"score probabilities sum to {total}, not 1")
    expect(all(0.0 <= p <= 1.0 for p in first.probabilities.values()), "score probabilities outside [0, 1]")
    expect(first.ok, f"score fell back: {first.error}")
    again = llm.score(_QUESTION, options)
    expect(_close(first, again), f"score not reproducible at temperature 0: {first.probabilities} vs {again.probabilities}")

    batch = llm.score_many([_QUESTION, _QUESTION], options)
    expect(len(batch) == 2 and all(_close(first, b) for b in batch), "score_many disagrees with score")
    from_async = asyncio.run(llm.ascore(_QUESTION, options))
    expect(_close(first, from_async), "ascore disagrees with score")

    if problems:
        raise ConformanceError("; ".join(problems))
    return {"chat": text.text, "structured_ok": structured.ok, "score": first.probabilities, "method": first.method}


def _close(a: ScoreReply, b: ScoreReply) -> bool:
    return a.probabilities.keys() == b.probabilities.keys() and all(
        math.isclose(a.probabilities[k], b.probabilities[k], abs_tol=1e-4) for k in a.probabilities
    )
