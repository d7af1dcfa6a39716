"""Evaluating a `Recommender` with the offline protocol, conditioning on what is known before the part.

The evaluator (evaluation.py) takes a scorer ``users -> scores``. `history_scorer`
builds one that hands the model each user's history known before the part
(train for ``valid``, train + valid for ``test``), so a sequential model's input
on the test part ends with the validation item, exactly as in RecBole's protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from recarena.simulator.data.splits import Split

from .base import Recommender, user_histories
from .evaluation import EvaluationResult, evaluate


def history_scorer(model: Recommender, split: Split, part: Literal["valid", "test"]) -> Callable[[np.ndarray], torch.Tensor]:
    """A scorer for `evaluate` that conditions `model` on the histories known before `part`."""
    known = user_histories(split.known_before(part), split.dataset.n_users)
    return lambda users: model.score(users, [known[u] for u in np.asarray(users).tolist()])


def evaluate_recommender(
    model: Recommender, split: Split, part: Literal["valid", "test"] = "test", ks: Sequence[int] = (10,)
) -> EvaluationResult:
    """Full-ranking metrics of a fitted `model` on `part` of `split`."""
    return evaluate(history_scorer(model, split, part), split, part, ks)
