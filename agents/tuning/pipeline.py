"""From a training dataset to an adapter folder: examples, base model, LoRA, training, manifest.

    folder, manifest = tune_lora(split.train_dataset(), TuneSettings(seed=0), out=Path("runs/tune-llm"))

`tune_lora` is given the training data only (the caller splits; ``recarena tune-llm`` passes
``leave_one_out(data).train_dataset()``), checkpoints into ``out/checkpoints`` and resumes from there
when rerun with the same settings, and writes ``out/adapter-<hash>/`` (`manifest.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from recarena.simulator.data import Dataset

from .base import Recipe, add_lora, base_identity, device_and_dtype, load_base
from .examples import ExampleConfig, build_examples, describe_examples, prompt_versions
from .manifest import command_line, library_versions, write_adapter
from .packing import pack
from .trainer import latest_checkpoint, train
from .validation import HeldOut

FORMAT = 1


@dataclass(frozen=True)
class TuneSettings:
    """Everything that decides the adapter, besides the data."""

    examples: ExampleConfig = field(default_factory=ExampleConfig)
    recipe: Recipe = field(default_factory=Recipe)
    base: Path | None = None
    """A local Hugging Face causal LM folder; None: the embedded SmolLM2 (GGUF)."""
    seed: int = 0
    validate_every: int = 50
    """Steps between measurements on the held-out questions (when `tune_lora` is given some)."""


def settings_record(settings: TuneSettings, train: Dataset, base: dict[str, str]) -> dict[str, Any]:
    """What a checkpoint must share with a run for the run to resume from it (paths and times left out)."""
    return {"format": FORMAT, "base": {k: v for k, v in base.items() if k != "path"}, "data": train.fingerprint(),
            "prompts": prompt_versions(), "examples": asdict(settings.examples),
            "recipe": {**asdict(settings.recipe), "modules": list(settings.recipe.modules)}, "seed": settings.seed}  # fmt: skip


def tune_lora(train_data: Dataset, settings: TuneSettings, out: Path, progress: bool = True,
              dataset_name: str | None = None, command: str | None = None,
              held_out: HeldOut | None = None) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Train a LoRA of the users' LLM on `train_data` (training interactions only); return the adapter folder and its
    manifest (`command`, the command that makes it, goes into the manifest; default: this process's). `held_out`
    questions (validation: never trained on) are scored before training and every ``validate_every`` steps, beside
    their cheap baselines; the figures go into the manifest. See the module docstring."""
    settings.examples.check()
    settings.recipe.check()
    device, dtype = device_and_dtype()
    identity = {**base_identity(settings.base), "dtype": str(dtype).removeprefix("torch."), "device": device.type}
    record = settings_record(settings, train_data, identity)
    if held_out is not None:
        record["validation"] = {**held_out.describe(), "every": settings.validate_every}
    checkpoints = Path(out) / "checkpoints"
    latest_checkpoint(checkpoints, record)  # checkpoints of other settings are refused before any work
    examples = build_examples(train_data, settings.examples, settings.seed)
    base = load_base(settings.base, device, dtype, progress)
    torch.manual_seed(settings.seed)
    model = add_lora(base.model, settings.recipe)
    sequences = pack(base.tokenizer, examples, settings.recipe.max_tokens)
    pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
    measure = None if held_out is None else (lambda m: held_out.measure(m, base.tokenizer, settings.recipe.max_tokens))
    training = train(model, sequences, settings.recipe, settings.seed, checkpoints, record, pad, progress, measure,
                     settings.validate_every)  # fmt: skip
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    manifest = {
        "format": FORMAT,
        "base": base.identity,
        "data": {"dataset": dataset_name or train_data.name, "part": "train", "fingerprint": record["data"],
                 "interactions": int(train_data.n_interactions), **describe_examples(examples),
                 "sequences": len(sequences), "tokens": sum(len(s.tokens) for s in sequences)},  # fmt: skip
        "prompts": record["prompts"],
        "examples": record["examples"],
        "recipe": record["recipe"],
        "seed": settings.seed,
        "adapter": {"trainable_parameters": int(trainable)},
        "training": {"steps": training.steps, "final_loss": training.curve[-1]["loss"] if training.curve else None,
                     "curve": training.curve},  # fmt: skip
        "validation": None if held_out is None else {**record["validation"], "baselines": held_out.baselines(),
                                                     "curve": training.validation},  # fmt: skip
        "libraries": library_versions(),
        "run": {"command": command or command_line(), "resumed_from": training.resumed_from, "seconds": training.seconds},
    }
    return write_adapter(model, manifest, Path(out)), manifest
