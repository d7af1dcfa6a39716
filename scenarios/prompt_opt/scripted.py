"""A scripted LLM whose prompts have known rewards, to prove the optimisers' logic (shipped like a checker).

`KnownRewardBackend` plays both roles through the real LLM layer (cache, accounting, metering):

* as the **ranker** it knows each case's target (by title, or by the set of candidate titles for real
  cases, see `targets_of`), reads the quality tag ``[q=0.7]`` in the rendered prompt (a template without
  a tag has `default_quality`) and, per case, puts the target first with probability q (decided by
  a hash of the prompt, so deterministic) or leaves it out; a prompt's expected NDCG@10 is its q.
* as the **optimiser** it recognises the meta-prompt (reasons, refine, paraphrase, RecPrompt step)
  and answers with `writer(kind, request_text, count)`; the default writer proposes templates whose
  qualities come from `qualities` in order, between the markers.

`make_cases` builds a small catalogue and cases in which every target title is known to the backend.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from recarena.agents.llm import (
    Backend,
    ChatRequest,
    RawCompletion,
    RawScore,
    ScoreRequest,
)
from recarena.recommenders.llm_prompt import history_text, make_candidates

from recarena.scenarios.prompt_bench.protocols import Candidate, RankingCase

_QUALITY = re.compile(r"\[q=([0-9.]+)\]")
_YEAR = re.compile(r" \(\d{4}\)$")
_LINE = re.compile(r"^(C\d+): ([^;\n]*)", re.MULTILINE)

TEMPLATE = ("A user watched these movies, oldest first:\n{history}\n\nRank the candidate movies by how likely the user "
            "is to watch them next:\n{candidates}\n\nAnswer with the candidate ids only, best first. [q=%s]")  # fmt: skip


def template_with_quality(quality: float, words: str = "") -> str:
    """A valid listwise template with quality tag `quality` (and optional extra `words` to tell copies apart)."""
    return TEMPLATE % f"{quality:g}" + (f" {words}" if words else "")


def meta_kind(text: str) -> str:
    """Which optimiser question `text` is: reasons, refine, paraphrase, recprompt or other."""
    if "Give up to three short reasons" in text:
        return "reasons"
    if "Paraphrase the following prompt" in text:
        return "paraphrase"
    if "CURRENT prompt" in text:
        return "recprompt"
    if "Write an improved prompt" in text:
        return "refine"
    return "other"


def quality_of(text: str, default: float) -> float:
    match = _QUALITY.search(text)
    return float(match.group(1)) if match else default


class KnownRewardBackend(Backend):
    """See the module docstring. ``requests`` keeps every request as (kind, text) for assertions."""

    name = "known-reward"
    max_concurrency = 1

    def __init__(self, targets: set[str] | dict[frozenset[str], str], *, qualities: Sequence[float] = (0.3, 0.6, 0.9), default_quality: float = 0.2,
                 writer: Callable[[str, str, int], str] | None = None, fail: Callable[[str, str], Exception | None] | None = None) -> None:  # fmt: skip
        self.targets = targets
        self.qualities = list(qualities)
        self.default_quality = default_quality
        self.writer = writer or self._default_writer
        self.fail = fail
        self.requests: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        return {"backend": self.name, "model": "known-reward-1"}

    def _default_writer(self, kind: str, text: str, count: int) -> str:
        if kind == "reasons":
            return "1. The prompt does not say to look at the genres of the recent movies."
        quality = self.qualities[(count - 1) % len(self.qualities)]
        return f"Here is my prompt:\n<START>\n{template_with_quality(quality, f'{kind} {count}')}\n<END>"

    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        text = "\n".join(m["content"] for m in request.messages)
        kind = meta_kind(text) if request.messages[0]["role"] == "system" else "rank"
        with self._lock:
            self.requests.append((kind, text))
            self.counts[kind] = self.counts.get(kind, 0) + 1
            count = self.counts[kind]
        if self.fail is not None:
            error = self.fail(kind, text)
            if error is not None:
                raise error
        if kind != "rank":
            return RawCompletion(self.writer(kind, text, count), prompt_tokens=len(text) // 4, completion_tokens=40)
        return RawCompletion(self._rank(text), prompt_tokens=len(text) // 4, completion_tokens=20)

    def _rank(self, prompt: str) -> str:
        lines = _LINE.findall(prompt)
        if isinstance(self.targets, dict):
            wanted = self.targets.get(frozenset(title for _, title in lines))
            target = next((label for label, title in lines if title == wanted), None)
        else:
            target = next((label for label, title in lines if _YEAR.sub("", title) in self.targets), None)
        others = [label for label, _ in lines if label != target]
        draw = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 16**8
        good = target is not None and draw < quality_of(prompt, self.default_quality)
        return ", ".join(([target] if good else []) + others)

    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        return RawScore({o: -1.0 - i for i, o in enumerate(request.options)}, "logprobs")


def targets_of(cases: Sequence[RankingCase]) -> dict[frozenset[str], str]:
    """For a backend ranking real cases: each case's candidate titles -> its target's title."""

    def head(candidate: Candidate) -> str:
        return candidate.text.split(";")[0]

    return {frozenset(head(c) for c in case.candidates): next(head(c) for c in case.candidates if c.item == case.target)
            for case in cases}  # fmt: skip


def make_cases(n_train: int, n_valid: int, n_test: int, *, pool: int = 5, seed: int = 0) -> tuple[dict[str, list[RankingCase]], set[str]]:
    """Train/valid/test cases over a made-up catalogue, and the target titles (for the backend)."""
    parts = {"train": n_train, "valid": n_valid, "test": n_test}
    n_targets = sum(parts.values())
    n_items = n_targets + 40
    titles = [f"Target film {i}" if i < n_targets else f"Other film {i}" for i in range(n_items)]
    items = pd.DataFrame({"title": titles, "year": pd.array([None] * n_items, dtype="Int32"), "genres": [("Drama",)] * n_items})
    rng = np.random.default_rng(seed)
    cases, target = {}, 0
    for part, count in parts.items():
        cases[part] = []
        for k in range(count):
            history = tuple(int(i) for i in rng.choice(np.arange(n_targets, n_items), size=3, replace=False))
            negatives = [int(i) for i in rng.choice(np.arange(n_targets, n_items), size=pool - 1, replace=False) if i not in history]
            shown = [target, *negatives]
            shown = [shown[i] for i in rng.permutation(len(shown))]
            cases[part].append(RankingCase(target, part, history, history_text(items, history),
                                           tuple(make_candidates(items, shown)), target))  # fmt: skip
            target += 1
    return cases, set(titles[:n_targets])
