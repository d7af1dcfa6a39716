"""The seeded, resumable LoRA training loop.

* **Seeded**: the adapter's initial weights come from ``torch.manual_seed(seed)``; the order of the
  packed sequences from the named stream `TUNE_ORDER` (one permutation per epoch), so step ``s``
  always trains on the same sequences, whether the run was resumed or not; dropout (off by default)
  draws from torch's RNG, whose state is checkpointed.
* **Checkpoints**: every ``checkpoint_every`` steps, ``checkpoints/step-NNNNNN/`` holds the LoRA
  weights, the optimiser and schedule states, torch's RNG states, the step and the curve so far,
  and the run's settings. It is written in a hidden folder beside it and renamed into place (a kill
  mid-write leaves no half checkpoint); the older ones are then removed.
* **Resume**: a run finds the latest checkpoint and goes on from its step, after checking that it
  was written with the same settings (base, data, prompts, examples, recipe, seed); a different one
  is refused in one line naming what differs. On CPU a resumed run ends bit-identical to an
  uninterrupted one.
* **Curve**: (step, loss, seconds since the start, counting the time before a resume).
* **Validation**: given a `measure` (a model's held-out figures, `validation.HeldOut.measure`), the
  model is measured before the first step and every ``validate_every`` steps and at the end; the
  figures are checkpointed with the curve. Measuring reads the model only, so a run with and without
  it trains the same adapter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from recarena.simulator.data.streams import TUNE_ORDER

from .base import Recipe, TuningError
from .packing import Packed, collate, option_logits, option_loss

CHECKPOINT_PREFIX = "step-"


@dataclass
class Training:
    """What a training run did."""

    steps: int
    resumed_from: int
    """The checkpoint step the run started from (0: from scratch)."""
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    validation: list[dict[str, Any]] = field(default_factory=list)
    """(step, held-out figures) from `measure`: step 0 is the base model."""


class Order:
    """The sequences of each step: epoch ``e`` walks a permutation of all sequences drawn from `TUNE_ORDER` (seed, e)."""

    def __init__(self, n: int, batch: int, seed: int) -> None:
        self.n, self.batch, self.seed = n, batch, seed
        self._epochs: dict[int, list[int]] = {}

    def _permutation(self, epoch: int) -> list[int]:
        if epoch not in self._epochs:
            self._epochs = {epoch: TUNE_ORDER.generator(self.seed, epoch=epoch).permutation(self.n).tolist()}
        return self._epochs[epoch]

    def step(self, step: int) -> list[int]:
        """Indices of the sequences trained on at `step` (0-based)."""
        return [self._permutation(p // self.n)[p % self.n] for p in range(step * self.batch, (step + 1) * self.batch)]


def learning_rate_factor(recipe: Recipe):
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0.1 at ``steps``."""

    def factor(step: int) -> float:
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        span = max(1, recipe.steps - recipe.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - recipe.warmup) / span)))

    return factor


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The LoRA weights (the only trainable parameters), on CPU."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def save_checkpoint(folder: Path, step: int, model: Any, optimizer, scheduler, curve: list, seconds: float, settings: dict,
                    validation: list | None = None) -> Path:  # fmt: skip
    """Write ``folder/step-NNNNNN`` whole or not at all; remove the older checkpoints; return the new one."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{CHECKPOINT_PREFIX}{step:06d}"
    partial = folder / f".{final.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    torch.save({"lora": trainable_state(model), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": _rng_states()}, partial / "state.pt")  # fmt: skip
    (partial / "progress.json").write_text(json.dumps({"step": step, "curve": curve, "seconds": seconds, "settings": settings,
                                                        "validation": validation or []}))
    for file in partial.iterdir():
        with open(file, "rb+") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    for older in checkpoints(folder):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return final


def checkpoints(folder: Path) -> list[Path]:
    """The complete checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "progress.json").is_file())


def _differences(stored: dict, current: dict, where: str = "") -> list[str]:
    names = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += _differences(a, b, f"{where}{key}.")
        elif a != b:
            names.append(f"{where}{key}")
    return names


def latest_checkpoint(folder: Path, settings: dict) -> Path | None:
    """The latest checkpoint in `folder`, refused (TuningError) when it was written with other `settings`."""
    found = checkpoints(folder)
    if not found:
        return None
    stored = json.loads((found[-1] / "progress.json").read_text())["settings"]
    differ = _differences(stored, json.loads(json.dumps(settings)))
    if differ:
        raise TuningError(f"out: {folder} holds checkpoints of a run with other settings ({', '.join(differ[:4])} differ); "
                          "rerun with the same settings to resume, or give another --out")  # fmt: skip
    return found[-1]


def train(model: Any, sequences: Sequence[Packed], recipe: Recipe, seed: int, folder: Path, settings: dict, pad_id: int,
          progress: bool = True, measure: Callable[[Any], dict[str, Any]] | None = None, validate_every: int = 50) -> Training:  # fmt: skip
    """Train the LoRA of `model` (a peft model, its adapter freshly initialised) on `sequences` for ``recipe.steps``,
    checkpointing into `folder` and resuming from its latest checkpoint, measuring it with `measure` (see the module
    docstring)."""
    if not sequences:
        raise TuningError("users: no training examples (no user has more than min_history training interactions)")
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(recipe))
    order = Order(len(sequences), recipe.batch, seed)
    curve: list[dict[str, float]] = []
    validation: list[dict[str, Any]] = []
    start, before = 0, 0.0
    found = latest_checkpoint(folder, settings)
    if found is not None:
        state = torch.load(found / "state.pt", weights_only=True, map_location="cpu")
        progress_file = json.loads((found / "progress.json").read_text())
        with torch.no_grad():
            named = dict(model.named_parameters())
            for name, value in state["lora"].items():
                named[name].copy_(value.to(device))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        start, curve, before = progress_file["step"], progress_file["curve"], progress_file["seconds"]
        validation = progress_file.get("validation", [])

    measuring = [0.0]  # seconds spent measuring in this process: not training time

    def validate(step: int) -> None:
        if measure is not None and not any(v["step"] == step for v in validation):
            began = time.perf_counter()
            figures = measure(model)
            measuring[0] += time.perf_counter() - began
            validation.append({"step": step, **figures, "seconds": round(time.perf_counter() - began, 3)})
            tqdm.write(f"held-out at step {step}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))

    started = time.perf_counter()
    if start == 0:
        validate(0)
    model.train()
    bar = tqdm(total=recipe.steps, initial=start, desc="LoRA steps", disable=not progress)
    for step in range(start, recipe.steps):
        batch = collate([sequences[i] for i in order.step(step)], pad_id, dtype, device)
        loss = option_loss(option_logits(model, batch), batch.answers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.clip)
        optimizer.step()
        scheduler.step()
        seconds, value = before + time.perf_counter() - started - measuring[0], loss.detach().item()
        curve.append({"step": step + 1, "loss": round(value, 6), "labels": int(batch.answers.numel()), "seconds": round(seconds, 3)})
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        if (step + 1) % validate_every == 0 or step + 1 == recipe.steps:
            validate(step + 1)
            model.train()
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == recipe.steps:
            save_checkpoint(folder, step + 1, model, optimizer, scheduler, curve, seconds, settings, validation)
    bar.close()
    model.eval()
    total = curve[-1]["seconds"] if curve else before
    return Training(recipe.steps, start, curve, total, validation)
