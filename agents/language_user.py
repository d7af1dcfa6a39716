"""LLM users and hybrid users: decisions by the LLM's likelihoods, pooled with the preference model.

Every decision is a `score` call (one forward pass, no parsing): P(Yes) to watch
each item, P(1..5) for a watched item's rating, P(Yes) to see the next page,
P(1..10) for the interview's satisfaction. Free text is asked only for reasons,
feelings and the interview, and only when the session asks for text.

The two kinds differ only in their `Blend` (log-linear pooling of two experts):

* watch logit = ``a * llm_logit + b * preference_logit + c`` (the preference logit is the
  statistical user's: its interest, moved by its recent items when the behaviour has
  dynamics, with its position and fatigue effects);
* log P(rating = k) = ``a_r * log P_llm(k) + b_r * log P_preference(k) + c_k`` (renormalised).

The **LLM user** is ``a=1, b=0, c=0`` (the LLM alone, also for leaving and
satisfaction). The **hybrid user** uses weights fitted by maximum likelihood on
held-out real interactions (`calibration.py`) and the statistical rules for
leaving and satisfaction. An LLM answer that is unusable falls back to the
statistical decision for that item, and is counted on the page. Free text is
asked with the anti-repetition settings of `llm.text`; a fragment ("The (1991)")
is dropped (a reason becomes empty, an interview answer "no usable answer") and
counted by the LLM layer as unusable text, not as a decision's fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .contract import Interview, PageReaction
from .llm.text import FREE_TEXT, MIN_WORDS, NO_USABLE_ANSWER, SPOKEN_LINE, spoken_part, usable_or_none
from .prompts import template
from .statistical import StatisticalUser, sigmoid

YES_NO = ("Yes", "No")
STARS = ("1", "2", "3", "4", "5")
TEN = tuple(str(k) for k in range(1, 11))


@dataclass(frozen=True)
class Blend:
    """Weights of the log-linear pool of the LLM and the preference model (see module docstring)."""

    watch_llm: float = 1.0
    watch_preference: float = 0.0
    watch_bias: float = 0.0
    rating_llm: float = 1.0
    rating_preference: float = 0.0
    rating_bias: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    llm_decides_leaving: bool = True
    """The LLM user asks the LLM whether to go on; the hybrid user uses the statistical rule."""
    fitted_on: dict[str, Any] = field(default_factory=dict)
    """How the weights were fitted (users, interactions, log-likelihoods), for reports."""


LLM_ONLY = Blend()


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


class LanguageUser(StatisticalUser):
    """A user that asks the LLM (see the module docstring); `blend` makes it an LLM or a hybrid user."""

    def __init__(self, profile, behaviour, rng, item_texts: Sequence[str], llm: Any, blend: Blend = LLM_ONLY, memory: Any = None, item_genres=None):
        super().__init__(profile, behaviour, rng, item_genres)
        self.item_texts = item_texts
        self.llm = llm
        self.blend = blend
        self.memory = memory
        self.fallbacks = 0
        self._calls: list[str] = []  # ids of the LLM calls made for the current page

    # ------------------------------------------------------------------ prompts
    def _system(self, query: str) -> dict[str, str]:
        memories = ""
        if self.memory is not None:
            recalled = self.memory.retrieve(query)
            memories = "What you remember:\n" + "\n".join(f"- {m}" for m in recalled) if recalled else ""
        return {"role": "system", "content": template("system").render(profile=self.profile.describe(), memories=memories)}

    def _ask(self, system: dict[str, str], name: str, **fields: object) -> list[dict[str, str]]:
        return [system, {"role": "user", "content": template(name).render(**fields)}]

    def _noted(self, replies: list) -> list:
        self._calls.extend(r.call_id for r in replies if getattr(r, "call_id", ""))
        return replies

    # ------------------------------------------------------------------ judgements (pure)
    def _llm_watch(self, items: Sequence[int], page: int) -> tuple[np.ndarray, np.ndarray]:
        """P(Yes) per item from the LLM, and which answers were usable."""
        system = self._system("; ".join(self.item_texts[i] for i in items))
        requests = [self._ask(system, "watch", page=page + 1, position=k + 1, item=self.item_texts[i]) for k, i in enumerate(items)]
        replies = self._noted(self.llm.score_many(requests, YES_NO, component="users.watch"))
        ok = np.array([r.ok for r in replies], dtype=bool)
        p_yes = np.array([r.probabilities.get("Yes", 0.5) if r.ok else 0.5 for r in replies])
        return p_yes, ok

    def _llm_ratings(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        system = self._system("; ".join(self.item_texts[i] for i in items))
        replies = self._noted(self.llm.score_many([self._ask(system, "rate", item=self.item_texts[i]) for i in items], STARS, component="users.rate"))
        ok = np.array([r.ok for r in replies], dtype=bool)
        levels = np.array([[r.probabilities.get(s, 0.2) for s in STARS] if r.ok else [0.2] * 5 for r in replies])
        return levels / levels.sum(1, keepdims=True), ok

    def _pooled_watch_logits(self, items: Sequence[int], page: int, alone: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Pooled watch logits on a page; `alone` judges each item as if first on a fresh page."""
        b = self.blend
        user = np.array([self.profile.user])
        preference = self.behaviour.watch_logits(user, np.asarray(items, dtype=np.int64)[None, :], np.array([page]), self.recent())[0]
        if alone:
            preference = preference + self.behaviour.config.position_decay * np.log1p(np.arange(len(items)))
        if b.watch_llm == 0.0:
            return preference * b.watch_preference + b.watch_bias, np.ones(len(items), bool)
        p_yes, ok = self._llm_watch(items, page)
        pooled = b.watch_llm * _logit(p_yes) + b.watch_preference * preference + b.watch_bias
        # An unusable answer falls back to the statistical decision for that item.
        return np.where(ok, pooled, preference), ok

    def _pooled_ratings(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        b = self.blend
        preference = self.behaviour.preferences.rating_probabilities(np.full(len(items), self.profile.user), np.asarray(items, dtype=np.int64))
        if b.rating_llm == 0.0 or len(items) == 0:
            llm, ok = np.full((len(items), 5), 0.2), np.ones(len(items), bool)
        else:
            llm, ok = self._llm_ratings(items)
        log_pool = b.rating_llm * np.log(llm) + b.rating_preference * np.log(preference) + np.asarray(b.rating_bias)
        pooled = np.exp(log_pool - log_pool.max(1, keepdims=True))
        pooled /= pooled.sum(1, keepdims=True)
        return np.where(ok[:, None], pooled, preference), ok

    def watch_probabilities(self, items: Sequence[int]) -> np.ndarray:
        return sigmoid(self._pooled_watch_logits(items, page=0, alone=True)[0])

    def rating_probabilities(self, items: Sequence[int]) -> np.ndarray:
        return self._pooled_ratings(items)[0]

    # ------------------------------------------------------------------ the session
    def view_page(self, items: Sequence[int]) -> PageReaction:
        self.session.require_active()
        self._calls = []
        items = [int(i) for i in items]
        page = self.session.pages
        logits, watch_ok = self._pooled_watch_logits(items, page)
        already = np.array([i in self.had for i in items], dtype=bool)
        watched, _ = self.behaviour.draw_watches(self.rng, logits, already)
        # Ratings are asked only for what was watched: most items cost no rating call.
        chosen = [i for i, w in zip(items, watched) if w]
        levels, rating_ok = self._pooled_ratings(chosen)
        ratings = np.zeros(len(items), dtype=np.int64)
        ratings[watched] = self.behaviour.draw_ratings(self.rng, levels) if chosen else []
        fallbacks = int((~watch_ok).sum() + (~rating_ok).sum())
        user, pages = np.array([self.profile.user]), np.array([page])
        leave = bool(self.behaviour.draw_leave(self.rng, user, pages, watched[None, :], ratings[None, :])[0])
        if self.blend.llm_decides_leaving:
            llm_leave, ok = self._llm_leaves(items, watched, page)
            leave = llm_leave if ok else leave
            fallbacks += 0 if ok else 1
        reasons = feeling = None
        if self.session.context.text:
            reasons, feeling = self._texts(items, watched)
        self.fallbacks += fallbacks
        reaction = self.record_page(items, watched, ratings, leave, reasons, feeling, fallbacks, self._calls)
        if self.memory is not None:
            self._remember(page, items, reaction)
        return reaction

    def _remember(self, page: int, items: Sequence[int], reaction: PageReaction) -> None:
        chosen = [(r.item, r.rating) for r in reaction.items if r.watched]
        watched = "; ".join(f"{self.item_texts[i]} (rated {r})" for i, r in chosen) or "nothing"
        self.memory.add(
            "factual",
            f"Page {page + 1}: you watched {watched} and skipped {len(items) - len(chosen)} suggestions.",
            importance=min(1.0, 0.3 + 0.1 * len(chosen)),
            items=[i for i, _ in chosen],
            ratings=[r for _, r in chosen],
        )
        self.memory.add("emotional", f"After page {page + 1} you felt {reaction.feeling}.", importance=0.4)

    def end_session(self) -> None:
        if self.memory is not None and self.session.pages:
            self.memory.add(
                "emotional",
                f"A session ended after {self.session.pages} pages; you watched {len(self.session.watched)} movies.",
                importance=0.6,
            )
        super().end_session()

    def _titles(self, watched_items: Sequence[int]) -> str:
        return (": " + "; ".join(self.item_texts[i] for i in watched_items[:5])) if watched_items else ""

    def _llm_leaves(self, items: Sequence[int], watched: np.ndarray, page: int) -> tuple[bool, bool]:
        chosen = [i for i, w in zip(items, watched) if w]
        system = self._system("next page")
        reply = self.llm.score(
            self._ask(system, "next_page", page=page + 1, watched=len(chosen), shown=len(items), titles=self._titles(chosen)),
            YES_NO,
            component="users.leave",
        )
        self._noted([reply])
        if not reply.ok:
            return True, False
        return bool(self.rng.random() >= reply.probabilities.get("Yes", 0.5)), True

    def _texts(self, items: Sequence[int], watched: np.ndarray) -> tuple[list[str], str]:
        system = self._system("reasons")
        requests = [self._ask(system, "reason", item=self.item_texts[i], decision="watch" if w else "skip") for i, w in zip(items, watched)]
        requests.append(self._ask(system, "feeling", watched=int(watched.sum()), shown=len(items)))
        replies = self._noted(self.llm.chat_many(requests, params={**FREE_TEXT, "max_tokens": 40}, component="users.text"))
        reasons = [self._usable(r.text if r.ok else None, q, "users.text") or "" for r, q in zip(replies[:-1], requests)]
        # A feeling may be a word or two ("bored"); it still must not be a title or a stutter.
        feeling = self._usable(replies[-1].text if replies[-1].ok else None, requests[-1], "users.text", min_words=1)
        return reasons, feeling or "no comment"

    def _usable(self, text: str | None, request: list[dict[str, str]], component: str, min_words: int = MIN_WORDS) -> str | None:
        """The spoken part of `text` (`spoken_part`: its first line, whole sentences) when it reads like a person; None
        for a fragment, counted by the LLM layer as unusable text. None for `text` is a failed call, already counted
        there as a fallback."""
        if text is None:
            return None
        return usable_or_none(spoken_part(text), prompt=request[-1]["content"], accountant=getattr(self.llm, "accountant", None),
                              component=component, min_words=min_words, in_character=True)  # fmt: skip

    def interview(self) -> Interview:
        statistical = super().interview()
        if not self.blend.llm_decides_leaving and not self.session.context.text:
            return statistical
        fields = dict(pages=self.session.pages, watched=len(self.session.watched), shown=len(self.session.shown), titles=self._titles(self.session.watched))
        system = self._system("satisfaction")
        satisfaction = statistical.satisfaction
        if self.blend.llm_decides_leaving:
            reply = self.llm.score(self._ask(system, "satisfaction", **fields), TEN, component="users.interview")
            if reply.ok:
                satisfaction = int(np.clip(round(sum(int(k) * p for k, p in reply.probabilities.items())), 1, 10))
            else:
                self.fallbacks += 1
        if not self.session.context.text:
            return Interview(satisfaction=satisfaction)
        # Two plain questions, one line each: asked for both at once in JSON, SmolLM2 filled the fields with titles
        # and numbers (no usable answer in 5 of the demo's 6 interviews).
        requests = [self._ask(system, name, **fields) for name in ("interview_liked", "interview_missed")]
        replies = self._noted(self.llm.chat_many(requests, params=SPOKEN_LINE, component="users.interview"))
        self.fallbacks += sum(not r.ok for r in replies)  # a failed call: no made-up words in the user's name
        liked, missed = (self._usable(r.text if r.ok else None, q, "users.interview") or NO_USABLE_ANSWER
                         for r, q in zip(replies, requests))  # fmt: skip
        return Interview(satisfaction=satisfaction, liked=liked, missed=missed)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["fallbacks"] = self.fallbacks
        if self.memory is not None:
            state["memory"] = self.memory.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.fallbacks = state["fallbacks"]
        if self.memory is not None and "memory" in state:
            self.memory.set_state(state["memory"])
