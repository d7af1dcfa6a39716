"""`ScriptedBackend`: a fake LLM backend answering from scripts, for unit tests of the logic around an LLM.

It ships with the library so that tests of your own users, rerankers or optimisers can script the LLM
the same way ours do; every backend also has tests against the real thing (the embedded model, a
real ``llama_cpp.server``).
"""

from __future__ import annotations

import threading
import time

from .protocol import Backend, ChatRequest, RawCompletion, RawScore, ScoreRequest


class ScriptedBackend(Backend):
    """A fake backend answering from scripts, for unit tests of the layer's logic.

    ``answers``: callables or values consumed in order per call (an Exception instance is raised);
    when exhausted, ``default`` is used. ``score`` likewise with ``scores``.
    """

    name = "scripted"

    def __init__(self, answers=(), default="ok", scores=(), default_score=None, delay_s=0.0, max_concurrency=4):
        self.answers = list(answers)
        self.default = default
        self.scores = list(scores)
        self.default_score = default_score
        self.delay_s = delay_s
        self.max_concurrency = max_concurrency
        self.requests: list = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        return {"backend": self.name, "model": "scripted-1"}

    def _next(self, queue, default, request):
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            item = queue.pop(0) if queue else default
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if callable(item) and not isinstance(item, type):
                item = item(request)
            if isinstance(item, BaseException):
                raise item
            return item
        finally:
            with self._lock:
                self.in_flight -= 1

    def complete(self, request: ChatRequest, timeout_s: float) -> RawCompletion:
        text = self._next(self.answers, self.default, request)
        return RawCompletion(text, prompt_tokens=10, completion_tokens=5)

    def score_options(self, request: ScoreRequest, timeout_s: float) -> RawScore:
        item = self._next(self.scores, self.default_score, request)
        if item is None:
            item = {o: -1.0 - i for i, o in enumerate(request.options)}
        return RawScore(dict(item), "logprobs", prompt_tokens=7, completion_tokens=1)
