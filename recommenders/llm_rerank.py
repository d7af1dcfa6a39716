"""``llm-rerank``: a base recommender proposes, an LLM reorders.

    rec = build_recommender("llm-rerank", {"base": "pop", "pool": 20, "mode": "pointwise", "llm": "embedded"})
    rec.attach_llm(make_llm(...))   # optional: share one LLM (else built from the `llm` spec on first use)
    rec.fit(train, valid=valid)     # fits the base recommender
    rec.recommend(users, k=10)      # the base's top `pool` unseen items, reranked by the LLM, on top

From the command line: ``recarena ab --arms pop,llm-rerank --model-params llm-rerank.mode=listwise``.

For each user the base model's best `pool` items the user has not seen are shuffled with a seed
(per user), shown to the LLM with the user's last `history_len` items as titles with year and
genres, and ranked listwise or pointwise (see llm_ranking.py). `score` puts the reranked pool
on top in the LLM's order and every other item below in the base model's order, so `recommend`,
exclusions and candidate restrictions follow the shared contract. Answers are memoised per
(user, history, pool) and saved with the model, so a reloaded model scores identically without
calling the LLM again; misses and failed calls are counted in ``llm_stats``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator
from recarena.simulator.data import Dataset

from .base import Recommender
from .errors import RecommenderError
from .llm_prompt import (
    DEFAULT_TEMPLATES,
    PromptTemplate,
    TemplateError,
    history_text,
    make_candidates,
    profile_text,
)
from .llm_ranking import MAX_RETRIES, RankOutcome, rank_candidates
from .params import Params


class LLMRerankParams(Params):
    """Parameters of the LLM reranker."""

    base: str = Field("pop", description="registry name of the recommender that proposes the candidates")
    base_params: dict[str, Any] = Field(default_factory=dict, description="parameters of the base recommender (seed and progress are shared)")
    pool: int = Field(20, ge=1, le=100, description="candidates per user the LLM reranks (the base model's top unseen items)")
    mode: Literal["pointwise", "listwise"] = Field(
        "pointwise", description="pointwise: a Yes/No log-probability per candidate; listwise: the model writes an ordered list of ids"
    )
    llm: str = Field("embedded", description="the LLM: 'embedded' (SmolLM2 in-process) or 'openai:MODEL@BASE_URL'")
    llm_cache: str = Field("", description="SQLite cache of LLM answers ('' for none)")
    timeout_s: float = Field(60.0, gt=0, description="per-call LLM timeout in seconds (a timed-out call is a counted miss)")
    template: str = Field("", description="a text file with the prompt template ('' for the built-in one of the mode)")
    history_len: int = Field(10, ge=1, le=200, description="most recent history items shown in the prompt")
    profile: bool = Field(False, description="fill {user_profile} from the dataset's demographics")
    max_retries: int = Field(MAX_RETRIES, ge=0, le=MAX_RETRIES, description="retries of an unreadable listwise answer, with a format reminder")
    fuzzy_threshold: float = Field(0.8, gt=0, le=1, description="least difflib ratio for a fuzzy title match in an answer")

    @field_validator("base")
    @classmethod
    def _base_is_not_llm(cls, value: str) -> str:
        if value == "llm-rerank":
            raise ValueError("base cannot be llm-rerank itself")
        return value


class LLMReranker(Recommender):
    """The LLM reranker recommender; see the module docstring."""

    name = "llm-rerank"
    Params = LLMRerankParams
    update_mode = "incremental"

    def __init__(self, params: Params | None = None, **overrides: Any):
        super().__init__(params, **overrides)
        from .registry import recommender_class

        recommender_class(self.params.base)  # an unknown base fails at construction, naming the valid ones
        self.template = self._load_template()
        self.llm: Any = None
        self.base_model: Recommender | None = None
        self.memo: dict[tuple, tuple[int, ...]] = {}
        self.item_table: pd.DataFrame | None = None
        self.user_table: pd.DataFrame | None = None
        self.llm_stats = {"requests": 0, "misses": 0, "calls": 0, "retries": 0, "failed_calls": 0, "kept_order": 0}

    # ------------------------------------------------------------------ the LLM
    def attach_llm(self, llm: Any) -> LLMReranker:
        """Use `llm` (any `ChatModel`, e.g. one shared with the simulated users) instead of building one."""
        self.llm = llm
        return self

    def _get_llm(self) -> Any:
        if self.llm is None:
            from recarena.agents.llm import build_llm

            self.llm = build_llm(self.params.llm, self.params.llm_cache or None, timeout_s=self.params.timeout_s)
        return self.llm

    def _load_template(self) -> PromptTemplate:
        if not self.params.template:
            return DEFAULT_TEMPLATES[self.params.mode]
        path = Path(self.params.template)
        if not path.is_file():
            raise RecommenderError(f"{self.name}: template file {path} not found")
        try:
            return PromptTemplate(path.read_text(), name=path.stem, version=1)
        except TemplateError as error:
            raise TemplateError(f"{path}: {error}") from None

    # ------------------------------------------------------------------ contract
    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        from .registry import build_recommender

        base = build_recommender(self.params.base, {"seed": self.params.seed, "progress": self.params.progress, **self.params.base_params})
        self.base_model = base.fit(dataset, valid=valid)
        self.item_table = dataset.items[["title", "year", "genres"]].reset_index(drop=True)
        self.user_table = dataset.users.reset_index(drop=True) if dataset.users is not None else None
        self.memo = {}

    def _update(self, new: pd.DataFrame) -> None:
        self.base_model.update(new)

    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        base = self.base_model.score(users, history).numpy()
        out = np.empty_like(base, dtype=np.float32)
        for row, (user, known) in enumerate(zip(users.tolist(), history)):
            order = np.argsort(-base[row], kind="stable")
            out[row, order] = -np.arange(len(order), dtype=np.float32)  # below the pool: the base model's order
            pool = order[~np.isin(order, known)][: self.params.pool]
            ranked = self._rerank(int(user), known, pool)
            out[row, list(ranked)] = np.arange(len(ranked), 0, -1, dtype=np.float32)
        return torch.from_numpy(out)

    def _rerank(self, user: int, known: np.ndarray, pool: np.ndarray) -> tuple[int, ...]:
        recent = tuple(int(i) for i in known[-self.params.history_len :])
        key = (user, recent, tuple(int(i) for i in pool))
        if key in self.memo:
            return self.memo[key]
        if len(pool) < 2:  # nothing to order: no LLM call
            return key[2]
        outcome = self.rank_pool(user, recent, pool)
        self.memo[key] = outcome.items
        return outcome.items

    def rank_pool(self, user: int, history: tuple[int, ...], pool: np.ndarray) -> RankOutcome:
        """Shuffle `pool` with the seed, show it to the LLM after `history`, and return the outcome."""
        rng = np.random.default_rng([self.params.seed, user, len(history)])
        shown = pool[rng.permutation(len(pool))]
        candidates = make_candidates(self.item_table, shown.tolist())
        profile = profile_text(self.user_table, user) if self.params.profile else None
        outcome = rank_candidates(self._get_llm(), self.template, self.params.mode, history_text(self.item_table, history),
                                  candidates, rng, user_profile=profile, max_retries=self.params.max_retries,
                                  fuzzy_threshold=self.params.fuzzy_threshold)  # fmt: skip
        stats = self.llm_stats
        stats["requests"] += 1
        stats["misses"] += int(outcome.miss)
        stats["calls"] += outcome.calls
        stats["retries"] += outcome.retries
        stats["failed_calls"] += outcome.failed_calls
        stats["kept_order"] += int(outcome.kept_order)
        return outcome

    def _state(self) -> dict[str, Any]:
        items = self.item_table
        return {
            "base": self.base_model._state(),
            "memo": [(list(k[1]), k[0], list(k[2]), list(v)) for k, v in self.memo.items()],
            "items": {"title": items["title"].tolist(), "year": [None if pd.isna(y) else int(y) for y in items["year"]],
                      "genres": [list(g) for g in items["genres"]]},
            "users": self.user_table.to_dict("list") if self.user_table is not None else None,
            "llm_stats": dict(self.llm_stats),
        }  # fmt: skip

    def _restore(self, state: dict[str, Any]) -> None:
        from .registry import build_recommender

        base = build_recommender(self.params.base, {"seed": self.params.seed, "progress": self.params.progress, **self.params.base_params})
        base.n_users, base.n_items = self.n_users, self.n_items
        base.interactions, base.histories = self.interactions, self.histories
        base._restore(state["base"])
        self.base_model = base
        self.memo = {(user, tuple(recent), tuple(pool)): tuple(ranked) for recent, user, pool, ranked in state["memo"]}
        items = state["items"]
        self.item_table = pd.DataFrame({"title": items["title"], "year": pd.array(items["year"], dtype="Int32"),
                                        "genres": items["genres"]})  # fmt: skip
        self.user_table = pd.DataFrame(state["users"]) if state["users"] is not None else None
        self.llm_stats = dict(state["llm_stats"])
