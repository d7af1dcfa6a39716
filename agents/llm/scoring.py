"""Choice scoring shared by the backends: mapping top-k token log-probabilities onto options,
renormalising, and the constrained-generation fallback when no log-probabilities are available."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from .protocol import Backend, ChatRequest, RawScore, ScoreRequest
from .schema import AnswerInvalid, Schema

NEG_INF = float("-inf")


def validate_options(options: Sequence[str]) -> tuple[str, ...]:
    """Options must be 2+ distinct, non-empty strings."""
    options = tuple(options)
    if len(options) < 2:
        raise ValueError(f"score needs at least two options, got {list(options)}")
    if any(not isinstance(o, str) or not o.strip() for o in options):
        raise ValueError(f"score options must be non-empty strings, got {list(options)}")
    if len(set(options)) != len(options):
        raise ValueError(f"score options must be distinct, got {list(options)}")
    return options


def logsumexp(values: Iterable[float]) -> float:
    values = [v for v in values if v > NEG_INF]
    if not values:
        return NEG_INF
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def normalise(logprobs: dict[str, float]) -> dict[str, float]:
    """Probabilities over the options (softmax of their log-probabilities); uniform if all are -inf."""
    total = logsumexp(logprobs.values())
    if total == NEG_INF:
        return {o: 1.0 / len(logprobs) for o in logprobs}
    return {o: (math.exp(v - total) if v > NEG_INF else 0.0) for o, v in logprobs.items()}


def options_from_top_tokens(top: Sequence[tuple[str, float]], options: Sequence[str]) -> dict[str, float]:
    """Map the first answer token's top-k candidates onto options.

    A candidate counts for an option when, stripped of whitespace and lower-cased, it equals the
    option or is a prefix of exactly one option ("Y" -> "Yes"); variants ("Yes", " yes") add up.
    Options no candidate reaches get -inf (their mass is below the top-k cut-off).
    Raises ValueError when no candidate reaches any option (the model wants to say something else).
    """
    lowered = [o.strip().lower() for o in options]
    buckets: dict[str, list[float]] = {o: [] for o in options}
    for token, logprob in top:
        text = token.strip().lower()
        if not text:
            continue
        exact = [o for o, low in zip(options, lowered) if low == text]
        prefix = [o for o, low in zip(options, lowered) if low.startswith(text)]
        target = exact or (prefix if len(prefix) == 1 else [])
        if target:
            buckets[target[0]].append(logprob)
    if not any(buckets.values()):
        raise ValueError(f"none of the top {len(top)} first tokens starts an option")
    return {o: logsumexp(v) for o, v in buckets.items()}


def answer_schema(options: Sequence[str]) -> Schema:
    """The schema of the constrained short answer used when log-probabilities are missing."""
    return Schema.of({
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(options)}},
        "required": ["answer"],
        "additionalProperties": False,
    })


def score_by_generation(backend: Backend, request: ScoreRequest, timeout_s: float) -> RawScore:
    """Ask for one of the options as a schema-constrained answer; the chosen one gets all the mass.

    Raises AnswerInvalid if the answer is not one of the options (the caller repairs/falls back).
    """
    schema = answer_schema(request.options)
    messages = request.messages + (
        {"role": "user", "content": "Answer with exactly one of: " + ", ".join(request.options) + ". "
         + schema.instruction()},
    )
    params = request.params.model_copy(update={"max_tokens": 32 + 8 * max(len(o) for o in request.options)})
    raw = backend.complete(ChatRequest(messages, params, schema.json_schema, "choice"), timeout_s)
    try:
        chosen = schema.validate_text(raw.text)["answer"]
    except AnswerInvalid as exc:
        raise AnswerInvalid(f"{exc}; raw answer {raw.text[:200]!r}") from None
    logprobs = {o: (0.0 if o == chosen else NEG_INF) for o in request.options}
    return RawScore(logprobs, "generation", raw.prompt_tokens, raw.completion_tokens)
