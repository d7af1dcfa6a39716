"""The one training loop: epochs with a tqdm bar, validation by full-ranking NDCG@10, early stopping.

`train` runs ``run_epoch`` until ``epochs`` are done or ``patience`` validations
pass without a better NDCG@10 on the validation interactions, then restores the
best state. Validation uses `recarena.recommenders.evaluation.evaluate`, so it
ranks all items exactly as the test does, conditioning on the training data only.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from recarena.simulator.data.splits import Split

from .evaluation import evaluate

VALID_METRIC = "ndcg@10"


@dataclass
class TrainingLog:
    """What happened in training: per epoch loss and seconds, validation scores and the epoch kept."""

    epochs_run: int = 0
    losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    validation: dict[int, float] = field(default_factory=dict)
    best_epoch: int = 0
    best_score: float = float("nan")
    stopped_early: bool = False

    @property
    def mean_epoch_seconds(self) -> float:
        return float(np.mean(self.epoch_seconds)) if self.epoch_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean_epoch_seconds"] = self.mean_epoch_seconds
        return out


def validation_split(model: Any, valid: pd.DataFrame) -> Split:
    """A `Split` whose train part is what `model` was fitted on and whose valid part is `valid`."""
    train = model.interactions
    frame = pd.concat([train, valid.reindex(columns=train.columns)], ignore_index=True)
    base = model.dataset.with_interactions(frame)
    return Split(base, train, valid.reset_index(drop=True), train.iloc[:0], "fit-validation")


def train(
    model: Any,
    module: torch.nn.Module,
    run_epoch: Callable[[int], float],
    valid: pd.DataFrame | None,
    epochs: int,
    patience: int,
    eval_every: int = 1,
    progress: bool = True,
) -> TrainingLog:
    """Train `module` with ``run_epoch(epoch) -> mean loss``; validate `model.score` on `valid`."""
    log = TrainingLog()
    split = validation_split(model, valid) if valid is not None else None
    best_state: dict[str, torch.Tensor] | None = None
    bad_rounds = 0
    bar = tqdm(range(1, epochs + 1), desc=f"{model.name} training", disable=not progress, leave=False)
    for epoch in bar:
        module.train()
        started = time.perf_counter()
        loss = float(run_epoch(epoch))
        log.epoch_seconds.append(time.perf_counter() - started)
        log.losses.append(loss)
        log.epochs_run = epoch
        module.eval()
        if split is None or epoch % eval_every:
            bar.set_postfix(loss=f"{loss:.4f}", s_per_epoch=f"{log.epoch_seconds[-1]:.2f}")
            continue
        model._after_epoch()
        score = evaluate(model.score, split, "valid", ks=(10,))[VALID_METRIC]
        log.validation[epoch] = score
        bar.set_postfix(loss=f"{loss:.4f}", valid_ndcg10=f"{score:.4f}", s_per_epoch=f"{log.epoch_seconds[-1]:.2f}")
        if best_state is None or score > log.best_score:
            log.best_score, log.best_epoch, bad_rounds = score, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            bad_rounds += 1
            if bad_rounds >= patience:
                log.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        log.best_epoch = log.epochs_run
    module.eval()
    model._after_epoch()
    if progress:
        best = f", best valid NDCG@10 {log.best_score:.4f} at epoch {log.best_epoch}" if split is not None else ""
        tqdm.write(f"{model.name}: {log.epochs_run} epochs, {log.mean_epoch_seconds:.3f}s per epoch{best}")
    return log
