"""Fixed, seeded protocols for LLM rankers, and their baselines.

    split = leave_one_out(load_dataset("ml-100k"))
    cases = build_cases(split, "recprompt", users=50, seed=0)           # 10 candidates, 1 positive
    result = evaluate_ranker(LLMCaseRanker(llm, POINTWISE, "pointwise"), cases)
    print(result.metrics, result.position_bias)

Two protocols:

* **recprompt** (RecPrompt-style): per user 10 candidates, the held-out next item and 9
  negatives; AUC, MRR, nDCG@5, nDCG@10.
* **po4isr** (PO4ISR-style): 20 candidates, the target and 19 uniform negatives; HR and NDCG at
  1, 5, 10, 20. `po4isr_splits` draws disjoint training (50 or 150), validation (100) and test
  (up to 1000) users; runs repeat over 5 seeds.

What a case may show (nothing held out reaches a prompt except the candidate list, which holds
the target by design): a ``test`` case's target is the user's test item and its history the
user's train + validation items; a ``valid`` case's target is the validation item after the
training items; a ``train`` case's target is the user's last *training* item after the ones
before it, so a prompt optimiser working on training users never sees a held-out interaction.
Negatives are drawn uniformly from the items the user never interacted with (in any part, so no
held-out item of the user can turn up in a training prompt either). Candidates are shuffled with
the seed and labelled C1..Cn in the order shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from recarena.recommenders import Recommender
from recarena.recommenders.llm_prompt import (
    Candidate,
    PromptTemplate,
    history_text,
    make_candidates,
    profile_text,
)
from recarena.recommenders.llm_ranking import (
    MAX_RETRIES,
    RankMode,
    RankOutcome,
    rank_candidates,
)
from recarena.simulator.data.dataset import per_user
from recarena.simulator.data.splits import Split
from recarena.simulator.data.streams import LLM_RANKER, PO4ISR_USERS, PROMPT_BENCH_CASE, PROMPT_BENCH_USERS, RANDOM_RANKER, TIE_BREAK
from tqdm.auto import tqdm

from recarena.scenarios.contract import ScenarioError

ProtocolName = Literal["recprompt", "po4isr"]
Part = Literal["train", "valid", "test"]
_PART_CODE = {"train": 0, "valid": 1, "test": 2}


@dataclass(frozen=True)
class ProtocolSpec:
    """How many candidates a case has and which metrics summarise it."""

    name: str
    n_candidates: int
    metrics: tuple[str, ...]


PROTOCOLS: dict[str, ProtocolSpec] = {
    "recprompt": ProtocolSpec("recprompt", 10, ("auc", "mrr", "ndcg@5", "ndcg@10")),
    "po4isr": ProtocolSpec("po4isr", 20, ("hr@1", "hr@5", "hr@10", "hr@20", "ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20")),
}


def protocol_spec(protocol: str) -> ProtocolSpec:
    """The protocol called `protocol`; ScenarioError naming the known ones otherwise."""
    if protocol not in PROTOCOLS:
        raise ScenarioError(f"protocol: unknown {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


@dataclass(frozen=True)
class RankingCase:
    """One user's ranking task: history (before the target), shuffled candidates, the target."""

    user: int
    part: str
    history: tuple[int, ...]
    history_text: str
    candidates: tuple[Candidate, ...]
    target: int
    user_profile: str = ""

    @property
    def candidate_items(self) -> tuple[int, ...]:
        return tuple(c.item for c in self.candidates)

    @property
    def target_position(self) -> int:
        """1-based position of the target in the presented order."""
        return self.candidate_items.index(self.target) + 1


# ---------------------------------------------------------------------------------------------- cases
def _part_frames(split: Split, part: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per user: the known items before the target (time order) and the target (0 or 1 item)."""
    n_users = split.dataset.n_users
    train = per_user(split.train, n_users)
    if part == "train":
        return [h[:-1] for h in train], [h[-1:] for h in train]
    if part == "valid":
        return train, per_user(split.valid, n_users)
    if part == "test":
        return per_user(split.known_before("test"), n_users), per_user(split.test, n_users)
    raise ScenarioError(f"part: unknown {part!r}; choose one of: train, valid, test")


def eligible_users(split: Split, part: str = "test", min_history: int = 3) -> np.ndarray:
    """Users with a target in `part` and at least `min_history` items before it."""
    known, target = _part_frames(split, part)
    return np.array([u for u in range(len(known)) if len(target[u]) == 1 and len(known[u]) >= min_history], dtype=np.int64)


def draw_users(split: Split, count: int, seed: int, part: str = "test", min_history: int = 3) -> np.ndarray:
    """`count` eligible users drawn with `seed` (all of them when fewer), sorted."""
    pool = eligible_users(split, part, min_history)
    rng = PROMPT_BENCH_USERS.generator(seed, part=_PART_CODE[part])
    return np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))


def build_cases(split: Split, protocol: str, users: int | Sequence[int], seed: int, *, part: str = "test",
                history_len: int = 10, min_history: int = 3, n_candidates: int | None = None) -> list[RankingCase]:
    """Ranking cases of `protocol` for `users` (a count drawn with `seed`, or explicit ids); see the module docstring."""
    spec = protocol_spec(protocol)
    n = n_candidates or spec.n_candidates
    known, targets = _part_frames(split, part)
    dataset = split.dataset
    avoid = per_user(dataset.interactions, dataset.n_users)
    chosen = draw_users(split, users, seed, part, min_history) if isinstance(users, (int, np.integer)) else np.asarray(users, np.int64)
    if n > dataset.n_items:
        raise ScenarioError(f"protocol {protocol}: {n} candidates but the dataset has only {dataset.n_items} items")
    cases = []
    for user in chosen.tolist():
        if len(targets[user]) != 1 or len(known[user]) < 1:
            raise ScenarioError(f"users: user {user} has no {part} target with history before it")
        target = int(targets[user][0])
        rng = PROMPT_BENCH_CASE.generator(seed, user=user, part=_PART_CODE[part])
        allowed = np.setdiff1d(np.arange(dataset.n_items), avoid[user])
        if len(allowed) < n - 1:
            raise ScenarioError(f"user {user}: only {len(allowed)} items left for {n - 1} negatives")
        negatives = rng.choice(allowed, size=n - 1, replace=False)
        shown = np.concatenate([[target], negatives])[rng.permutation(n)]
        history = tuple(int(i) for i in known[user])
        cases.append(RankingCase(
            user, part, history, history_text(dataset.items, history[-history_len:]),
            tuple(make_candidates(dataset.items, shown.tolist())), target, profile_text(dataset.users, user),
        ))  # fmt: skip
    return cases


def po4isr_splits(split: Split, n_train: int = 50, n_valid: int = 100, n_test: int = 1000, seed: int = 0,
                  history_len: int = 10) -> dict[str, list[RankingCase]]:
    """PO4ISR-style disjoint users: train cases from the training part, valid from validation, test from test."""
    if n_train not in (50, 150):
        raise ScenarioError(f"n_train: PO4ISR uses 50 or 150 training users, got {n_train}")
    rng = PO4ISR_USERS.generator(seed)
    pools = {part: set(eligible_users(split, part).tolist()) for part in ("train", "valid", "test")}
    everyone = rng.permutation(sorted(pools["train"] & pools["valid"] & pools["test"]))
    if len(everyone) < n_train + n_valid + 1:
        raise ScenarioError(f"po4isr: only {len(everyone)} eligible users for {n_train} train + {n_valid} valid + test")
    parts = {"train": everyone[:n_train], "valid": everyone[n_train : n_train + n_valid],
             "test": everyone[n_train + n_valid : n_train + n_valid + n_test]}  # fmt: skip
    return {part: build_cases(split, "po4isr", np.sort(users), seed, part=part, history_len=history_len)
            for part, users in parts.items()}  # fmt: skip


# ---------------------------------------------------------------------------------------------- rankers
class CaseRanker(Protocol):
    """Anything that ranks a case's candidates: ``rank(case) -> RankOutcome`` (every candidate once)."""

    name: str

    def rank(self, case: RankingCase) -> RankOutcome: ...


@dataclass
class LLMCaseRanker:
    """An LLM with a template and a mode (listwise / pointwise), seeded per case."""

    llm: Any
    template: PromptTemplate
    mode: RankMode = "pointwise"
    max_retries: int = MAX_RETRIES
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"llm-{self.mode} ({self.template.label})"

    def rank(self, case: RankingCase) -> RankOutcome:
        rng = LLM_RANKER.generator(self.seed, user=case.user)
        return rank_candidates(self.llm, self.template, self.mode, case.history_text, case.candidates, rng,
                               user_profile=case.user_profile, max_retries=self.max_retries)  # fmt: skip


@dataclass
class RandomCaseRanker:
    """A uniformly random order per case (seeded): the floor."""

    seed: int = 0
    name: str = "random"

    def rank(self, case: RankingCase) -> RankOutcome:
        rng = RANDOM_RANKER.generator(self.seed, user=case.user)
        items = tuple(case.candidate_items[i] for i in rng.permutation(len(case.candidates)))
        return RankOutcome(items, case.candidate_items, "random", miss=False, calls=0)


@dataclass
class ModelCaseRanker:
    """A fitted recommender ranking the same candidates by its scores, given the case's history."""

    model: Recommender
    name: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        self.name = self.name or self.model.name

    def rank(self, case: RankingCase) -> RankOutcome:
        history = [np.asarray(case.history, dtype=np.int64)]
        scores = self.model.score(np.array([case.user]), history)[0, torch.as_tensor(case.candidate_items)].numpy()
        tie_break = TIE_BREAK.generator(self.seed, user=case.user).permutation(len(scores))
        order = np.lexsort((tie_break, -scores))
        return RankOutcome(tuple(case.candidate_items[i] for i in order), case.candidate_items, "model", miss=False, calls=0)


# ---------------------------------------------------------------------------------------------- evaluation
def case_metrics(rank: int, n: int) -> dict[str, float]:
    """Every metric of one case from the target's 1-based `rank` among `n` candidates."""
    out = {"rank": float(rank), "auc": (n - rank) / (n - 1) if n > 1 else 1.0, "mrr": 1.0 / rank}
    for k in (1, 5, 10, 20):
        out[f"hr@{k}"] = float(rank <= k)
        out[f"ndcg@{k}"] = 1.0 / np.log2(rank + 1) if rank <= k else 0.0
    return out


@dataclass
class BenchResult:
    """A ranker on a list of cases: mean metrics, per-case rows, misses, position bias and LLM usage."""

    name: str
    protocol: str
    metrics: dict[str, float]
    per_case: list[dict[str, Any]]
    cases: int
    misses: int
    failed_calls: int
    retries: int
    calls: int
    parse: dict[str, int]
    position_bias: dict[str, float]
    tokens: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def miss_rate(self) -> float:
        return self.misses / self.cases if self.cases else 0.0

    def as_dict(self, with_cases: bool = True) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("name", "protocol", "metrics", "cases", "misses", "failed_calls", "retries",
                                              "calls", "parse", "position_bias", "tokens", "wall_s")}  # fmt: skip
        out["miss_rate"] = self.miss_rate
        if with_cases:
            out["per_case"] = self.per_case
        return out


def _as_outcome(result: RankOutcome | Sequence[int], case: RankingCase) -> RankOutcome:
    if isinstance(result, RankOutcome):
        outcome = result
    else:
        outcome = RankOutcome(tuple(int(i) for i in result), case.candidate_items, "function", miss=False, calls=0)
    if sorted(outcome.items) != sorted(case.candidate_items):
        raise ScenarioError(f"ranker returned {len(outcome.items)} items for user {case.user}, not a permutation of its candidates")
    return outcome


def evaluate_ranker(ranker: CaseRanker | Callable[[RankingCase], RankOutcome | Sequence[int]], cases: Sequence[RankingCase],
                    *, protocol: str = "", name: str | None = None, progress: bool = False) -> BenchResult:
    """Run `ranker` (a `CaseRanker` or a function of a case) on every case and summarise it."""
    rank = ranker.rank if hasattr(ranker, "rank") else ranker
    label = name or getattr(ranker, "name", None) or getattr(ranker, "__name__", "ranker")
    protocol = protocol or ("recprompt" if cases and len(cases[0].candidates) == 10 else "po4isr")
    accountant = getattr(getattr(ranker, "llm", None), "accountant", None)
    before = accountant.total() if accountant is not None else None
    started = time.perf_counter()
    rows = []
    for case in tqdm(cases, desc=f"{label}", disable=not progress, leave=False):
        outcome = _as_outcome(rank(case), case)
        row = {"user": case.user, **case_metrics(outcome.items.index(case.target) + 1, len(case.candidates)),
               "target_position": case.target_position, **outcome.as_dict()}  # fmt: skip
        rows.append(row)
    wall = time.perf_counter() - started
    spec = PROTOCOLS.get(protocol)
    keys = spec.metrics if spec else ("auc", "mrr")

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows])) if rows else float("nan")

    parse = {k: int(sum(r.get(k, 0) for r in rows)) for k in ("parsed", "missing", "duplicates", "unknown")}
    tokens = {}
    if accountant is not None:
        after = accountant.total()
        tokens = {"prompt": after.prompt_tokens - before.prompt_tokens, "completion": after.completion_tokens - before.completion_tokens,
                  "cache_hits": after.cache_hits - before.cache_hits}  # fmt: skip
    return BenchResult(
        label, protocol, {k: mean(k) for k in keys}, rows, len(rows), int(sum(r["miss"] for r in rows)),
        int(sum(r["failed_calls"] for r in rows)), int(sum(r["retries"] for r in rows)), int(sum(r["calls"] for r in rows)),
        parse, {"kept_order": mean("kept_order"), "kept_first": mean("kept_first"),
                "random_kept_first": 1.0 / len(cases[0].candidates) if cases else float("nan")},
        tokens, wall,
    )  # fmt: skip


def fit_baselines(split: Split, names: Sequence[str] = ("pop", "bpr", "sasrec"), seed: int = 0,
                  params: dict[str, dict[str, Any]] | None = None, progress: bool = False) -> list[CaseRanker]:
    """Random plus each named recommender fitted on the training part (validation for early stopping)."""
    from recarena.recommenders import build_recommender

    rankers: list[CaseRanker] = [RandomCaseRanker(seed)]
    train = split.train_dataset()
    for model_name in names:
        model = build_recommender(model_name, {"seed": seed, "progress": progress, **(params or {}).get(model_name, {})})
        rankers.append(ModelCaseRanker(model.fit(train, valid=split.valid), model_name, seed))
    return rankers
