"""`recarena tune-llm`: LoRA fine-tuning of the users' LLM on the training interactions.

The data is split leave-one-out (``--split fidelity``: as `recarena fidelity` splits it) and only the
training part reaches the examples
(`recarena.agents.tuning.examples`): the LLM user's own watch (Yes/No) and rate (1-5) prompts about
each sampled user's real next training items, with sampled unseen items as the No examples. A user's
questions are packed behind their shared system turn, each seen as at inference
(`recarena.agents.tuning.packing`). Training is seeded, shows a progress bar, checkpoints into
``OUT/checkpoints`` and resumes from there when rerun with the same settings. The adapter lands in
``OUT/adapter-<hash>/`` with its manifest (base digest, data fingerprint, prompt versions,
hyper-parameters, training curve); ``OUT/results.json`` says where.

The default recipe (600 users, 3 targets and 2 negatives each, 130 steps of 4 packed sequences (most of one pass), LoRA
rank 16 on the top 8 layers' attention and MLP projections, AdamW 2e-3) trains the embedded SmolLM2 in
about 40 minutes on 2 CPU cores; the validation questions are measured before, during and after. ``--base`` takes any local Hugging Face causal LM folder; CUDA with bf16 is used when present.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from recarena.agents.tuning.base import Recipe, TuningError, check_base
from recarena.agents.tuning.examples import ExampleConfig
from recarena.agents.tuning.validation import HeldOut
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out, random_holdout

from recarena.scenarios.config import CommonOptions, option
from recarena.scenarios.contract import Scenario, ScenarioError, check_out_folder, write_results

DEFAULT_EXAMPLES, DEFAULT_RECIPE = ExampleConfig(), Recipe()


@dataclass
class TuneLLMConfig(CommonOptions):
    """What `recarena tune-llm` runs."""

    out: Path = option(Path("runs/tune-llm"), "output folder: adapter-<hash>/ (adapter + manifest.json), checkpoints/, results.json")
    split: Literal["loo", "fidelity"] = option("loo", "the split whose training part is tuned on: loo (leave-one-out, as ab, feedback-loop and "
                                             "agreement split) or fidelity (recarena fidelity's per-user random hold-out, 10 + 10 percent of each user's interactions, this seed); "
                                             "a run refuses an adapter of another split")
    base: Path | None = option(None, "a local Hugging Face causal LM folder (config.json, weights, tokenizer); default: the embedded SmolLM2")
    users: int = option(DEFAULT_EXAMPLES.users, "training users sampled for examples (0: every user with enough history)")
    targets: int = option(DEFAULT_EXAMPLES.targets, "real next items per user (its last training interactions): Yes and its rating")
    negatives: int = option(DEFAULT_EXAMPLES.negatives, "items the user never interacted with, asked about and labelled No, per target")
    min_history: int = option(DEFAULT_EXAMPLES.min_history, "training interactions a user keeps before its targets (its profile's history)")
    steps: int = option(DEFAULT_RECIPE.steps, "optimiser steps")
    batch: int = option(DEFAULT_RECIPE.batch, "packed sequences per step (each: one user's system prompt and several questions)")
    max_tokens: int = option(DEFAULT_RECIPE.max_tokens, "tokens per packed sequence")
    lr: float = option(DEFAULT_RECIPE.lr, "AdamW learning rate (linear warm-up, cosine decay to a tenth)")
    warmup: int = option(DEFAULT_RECIPE.warmup, "warm-up steps")
    rank: int = option(DEFAULT_RECIPE.rank, "LoRA rank")
    alpha: float = option(DEFAULT_RECIPE.alpha, "LoRA alpha (scale alpha/rank)")
    dropout: float = option(DEFAULT_RECIPE.dropout, "LoRA dropout")
    layers: int = option(DEFAULT_RECIPE.layers, "LoRA on the top this many decoder layers (0: all)")
    modules: list[str] = option(list(DEFAULT_RECIPE.modules), "the projections LoRA adapts (e.g. q_proj k_proj v_proj o_proj)")
    checkpoint_every: int = option(DEFAULT_RECIPE.checkpoint_every, "steps between checkpoints (a rerun resumes from the latest)")
    valid_users: int = option(100, "validation users whose held-out item (Yes, and its rating) and never-had items (No) measure the model "
                                   "before training and every --validate-every steps, beside popularity and the item mean on the same questions "
                                   "(choose a recipe by these; 0: no measuring)")
    valid_negatives: int = option(4, "never-had items per validation user")
    validate_every: int = option(50, "steps between measurements on the validation questions (and at the end)")

    def example_config(self) -> ExampleConfig:
        return ExampleConfig(users=self.users, targets=self.targets, negatives=self.negatives, min_history=self.min_history)

    def recipe(self) -> Recipe:
        return Recipe(rank=self.rank, alpha=self.alpha, dropout=self.dropout, layers=self.layers, modules=tuple(self.modules),
                      steps=self.steps, batch=self.batch, max_tokens=self.max_tokens, lr=self.lr, warmup=self.warmup,
                      checkpoint_every=self.checkpoint_every)  # fmt: skip

    def validate(self) -> None:
        """Every setting that can be checked without the data (ScenarioError naming the field)."""
        check_out_folder(self.out)
        try:
            self.example_config().check()
            self.recipe().check()
            for name, low in (("valid_users", 0), ("valid_negatives", 0), ("validate_every", 1)):
                if getattr(self, name) < low:
                    raise ValueError(f"{name.replace('_', '-')}: must be at least {low}, got {getattr(self, name)}")
            check_base(self.base)
        except (ValueError, TuningError) as error:
            raise ScenarioError(str(error)) from None


def command_of(config: TuneLLMConfig) -> str:
    """The command line that runs `config` (every option spelt out), for the manifest."""
    words = ["recarena", TuneLLMScenario.name]
    for field in dataclasses.fields(config):
        value, flag = getattr(config, field.name), "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        elif value is not None:
            words += [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def run_tune_llm(config: TuneLLMConfig) -> dict[str, Any]:
    config.validate()
    from recarena.agents.tuning.pipeline import TuneSettings, tune_lora  # torch models load only for a run

    dataset = load_dataset(config.dataset)
    split = leave_one_out(dataset) if config.split == "loo" else random_holdout(dataset, 0.1, 0.1, seed=config.seed)
    train = split.train_dataset()  # the examples see the training part only
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = TuneSettings(config.example_config(), config.recipe(), config.base, config.seed, config.validate_every)
    held_out = None
    if config.valid_users:  # validation questions: measured, never trained on
        valid = ExampleConfig(users=config.valid_users, targets=1, negatives=config.valid_negatives, min_history=config.min_history)
        held_out = HeldOut.build(train, split.valid, valid, config.seed)
    started = time.perf_counter()
    try:
        with FileLock(out / "run.lock", timeout=0):
            folder, manifest = tune_lora(train, settings, out, config.progress, dataset.name, command_of(config), held_out)
    except Timeout:
        raise ScenarioError(f"out: {out} is in use by another tune-llm run") from None
    except TuningError as error:
        raise ScenarioError(str(error)) from None
    results = {"adapter": str(folder), "manifest": manifest, "seconds": time.perf_counter() - started}
    results["results_file"] = str(write_results(results, out))
    return results


class TuneLLMScenario(Scenario[TuneLLMConfig]):
    """LoRA fine-tuning of the users' LLM (the embedded SmolLM2, or --base) on the training part of a leave-one-out split:
    the LLM user's own watch and rate prompts about each user's real next items (Yes, and the real rating) and sampled
    unseen items (No), packed per user; seeded, resumable, written to a content-addressed adapter folder with a manifest."""

    name = "tune-llm"
    help = "LoRA fine-tuning of the users' LLM on the training interactions"
    config_type = TuneLLMConfig

    def run(self, config: TuneLLMConfig) -> dict[str, Any]:
        return run_tune_llm(config)

    def summary(self, results: dict[str, Any]) -> str:
        manifest = results["manifest"]
        training, data = manifest["training"], manifest["data"]
        resumed = manifest["run"]["resumed_from"]
        return "\n".join([
            f"tune-llm: {training['steps']} steps on {data['examples']} examples of {data['users']} users "
            f"({data['sequences']} packed sequences){f', resumed from step {resumed}' if resumed else ''}; final loss {training['final_loss']}",
            *_validation_lines(manifest.get("validation")),
            f"adapter: {results['adapter']}",
            f"results: {results['results_file']}",
        ])  # fmt: skip


def _validation_lines(validation: dict[str, Any] | None) -> list[str]:
    """The held-out figures before and after training, beside the baselines on the same questions."""
    if not validation or not validation["curve"]:
        return []
    first, last, base = validation["curve"][0], validation["curve"][-1], validation["baselines"]
    lines = [f"validation ({validation['users']} users, {validation['watch_questions']} watch and {validation['rate_questions']} rate questions):"]
    auc = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines.append(f"  watch AUC: step {first['step']} {auc(first['watch_auc'])}, step {last['step']} {auc(last['watch_auc'])}; "
                 f"popularity {auc(base['popularity_watch_auc'])}, random 0.500")
    if "rating_rmse" in last:
        lines.append(f"  rating RMSE: step {first['step']} {auc(first['rating_rmse'])}, step {last['step']} {auc(last['rating_rmse'])}; "
                     f"item mean {auc(base['item_mean_rating_rmse'])}")
    return lines
