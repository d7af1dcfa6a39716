"""Measuring the users' LLM on held-out items: the figures a recipe is chosen by.

    held = HeldOut.build(split.train_dataset(), split.valid, ExampleConfig(users=100, targets=1, negatives=4))
    held.baselines()              # popularity's watch AUC, the item mean's rating RMSE, on the same questions
    held.measure(model, tokenizer) # the LLM's watch AUC and log loss, rating RMSE and log loss

The questions are the LLM user's own (`examples.build_held_out_examples`): a watch question on each
sampled user's held-out item (Yes) and on items it never had (No), and the rate question on the
held-out item, the profile built from the training part. `recarena tune-llm` measures the
**validation** part before training (the base model) and at every checkpoint, beside the cheap
baselines computed on the same questions, so recipes are compared by held-out likelihood on
validation data; the test part stays for `benchmarks/tuned_llm.py`.

Nothing here trains: the examples are only scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset

from .examples import Example, ExampleConfig, build_held_out_examples

STARS = np.arange(1, 6, dtype=float)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for boolean `labels` (ties share their mean rank); nan without both classes."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * (len(labels) - positives)))


def bootstrap_auc(scores: np.ndarray, labels: np.ndarray, users: np.ndarray, seed: int, draws: int = 500,
                  minus: np.ndarray | None = None) -> tuple[float, float]:  # fmt: skip
    """A 95% percentile interval of `auc`, resampling users (a user's questions go together); with `minus` (another
    scorer of the same questions), of the paired difference ``auc(scores) - auc(minus)``."""
    rng, unique = np.random.default_rng(seed), np.unique(users)
    rows = {u: np.flatnonzero(users == u) for u in unique}
    values = []
    for _ in range(draws):
        take = np.concatenate([rows[u] for u in rng.choice(unique, len(unique))])
        value = auc(scores[take], labels[take])
        if minus is not None:
            value -= auc(minus[take], labels[take])
        if not np.isnan(value):
            values.append(value)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class HeldOut:
    """Held-out questions, with what the cheap baselines need (from the training part only)."""

    examples: tuple[Example, ...]
    popularity: np.ndarray
    """Training interactions per item."""
    item_mean: np.ndarray
    """Mean training rating per item (the global mean for items never rated)."""

    @classmethod
    def build(cls, train: Dataset, held: pd.DataFrame, config: ExampleConfig, seed: int = 0) -> HeldOut:
        frame = train.interactions
        popularity = np.bincount(frame["item"].to_numpy(), minlength=train.n_items).astype(float)
        if train.has_ratings:
            means = frame.groupby("item")["rating"].mean().reindex(range(train.n_items))
            item_mean = means.fillna(frame["rating"].mean()).to_numpy(dtype=float)
        else:
            item_mean = np.full(train.n_items, np.nan)
        return cls(tuple(build_held_out_examples(train, held, config, seed)), popularity, item_mean)

    @property
    def watch(self) -> list[Example]:
        return [e for e in self.examples if e.question == "watch"]

    @property
    def rate(self) -> list[Example]:
        return [e for e in self.examples if e.question == "rate"]

    def describe(self) -> dict[str, int]:
        watch = self.watch
        return {"users": len({e.user for e in self.examples}), "watch_questions": len(watch),
                "positives": sum(e.answer == "Yes" for e in watch), "rate_questions": len(self.rate)}  # fmt: skip

    def baselines(self) -> dict[str, float | None]:
        """Popularity's watch AUC and the item mean's rating RMSE on these questions (random's AUC is 0.5)."""
        watch, rate = self.watch, self.rate
        labels = np.array([e.answer == "Yes" for e in watch])
        out: dict[str, float | None] = {"popularity_watch_auc": _round(auc(self.popularity[[e.item for e in watch]], labels))}
        real = np.array([float(e.answer) for e in rate])
        out["item_mean_rating_rmse"] = _round(_rmse(self.item_mean[[e.item for e in rate]], real)) if len(rate) else None
        return out

    def measure_probabilities(self, probabilities: Sequence[np.ndarray]) -> dict[str, float | None]:
        """Watch AUC and mean log loss, rating RMSE (of the expected stars) and mean log loss, from each example's
        probabilities over its options (in `examples` order)."""
        watch_p = np.array([p[0] for p, e in zip(probabilities, self.examples) if e.question == "watch"])
        labels = np.array([e.answer == "Yes" for e in self.watch])
        out: dict[str, float | None] = {"watch_auc": _round(auc(watch_p, labels)),
                                        "watch_log_loss": _round(_log_loss(watch_p, labels))}  # fmt: skip
        rate = [(p, e) for p, e in zip(probabilities, self.examples) if e.question == "rate"]
        if rate:
            real = np.array([float(e.answer) for _, e in rate])
            expected = np.array([float(p @ STARS) for p, _ in rate])
            chosen = np.array([p[e.label] for p, e in rate])
            out["rating_rmse"] = _round(_rmse(expected, real))
            out["rating_log_loss"] = _round(float(-np.mean(np.log(np.clip(chosen, 1e-12, 1)))))
        return out

    def measure(self, model: Any, tokenizer: Any, max_tokens: int = 1024) -> dict[str, float | None]:
        """`measure_probabilities` of a torch model (base or tuned), read as the LLM user reads it."""
        from .base import score_examples  # torch loads only when a model is measured

        return self.measure_probabilities(score_examples(model, tokenizer, self.examples, max_tokens=max_tokens))


def _log_loss(p_yes: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(p_yes, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))


def _rmse(predicted: np.ndarray, real: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - real) ** 2)))


def _round(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 6)
