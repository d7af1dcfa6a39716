"""Fitted preference models kept on disk, so that the same training data is fitted once per machine.

Fitting the preference model is the slowest part of building the users (about 11 s on ml-100k, on one core), and
every run on the same data fits the very same model: the A/B test and its rerun in a new folder, the agreement
scenario's two user models, the fidelity check, the suite's many small runs. `fitted_preferences` returns the stored
fit when one exists and fits (then stores) otherwise.

A stored fit is found by the sha256 of everything the fit reads:

* the interactions' users, items and ratings, the item and user counts, and the genre matrix;
* the `PreferenceConfig` (all but ``progress``);
* the source of `recarena.agents.preferences` and torch's version, so that a change to the fitting code, or a torch
  that computes differently, never reuses an old fit.

Files live in ``recarena_home()/preferences/`` as ``.npz`` (plain arrays, no pickle), written to a temporary name
and renamed into place, so a killed run or a second process never leaves half a file under the real name. A file
that cannot be read is fitted again and replaced. ``RECARENA_PREFERENCE_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from recarena.simulator.data import Dataset
from recarena.simulator.data.sources import recarena_home

from . import preferences as _fitting
from .preferences import PreferenceConfig, PreferenceModel, fit_preferences, seen_items

CACHE_SWITCH = "RECARENA_PREFERENCE_CACHE"
"""The environment variable that turns the cache off when set to 0."""

_ARRAYS = tuple(f.name for f in fields(PreferenceModel) if f.name != "seen")


def preference_key(dataset: Dataset, config: PreferenceConfig) -> str:
    """The sha256 naming `dataset`'s fit under `config` (see the module docstring for what goes in)."""
    digest = hashlib.sha256()
    frame = dataset.interactions
    for column in ("user", "item", "rating"):
        digest.update(np.ascontiguousarray(frame[column].to_numpy()).tobytes())
    digest.update(f"{dataset.n_users},{dataset.n_items}".encode())
    digest.update(np.ascontiguousarray(dataset.genre_matrix(), dtype=np.float64).tobytes())
    settings = {k: v for k, v in asdict(config).items() if k != "progress"}
    digest.update(repr(sorted(settings.items())).encode())
    digest.update(Path(_fitting.__file__).read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def _load(path: Path, dataset: Dataset) -> PreferenceModel | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError):
        return None  # unreadable or from another layout: fit again
    arrays["watch_bias"] = float(arrays["watch_bias"])
    return PreferenceModel(**arrays, seen=seen_items(dataset))


def _store(path: Path, model: PreferenceModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **{name: np.asarray(getattr(model, name)) for name in _ARRAYS})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def fitted_preferences(dataset: Dataset, config: PreferenceConfig = PreferenceConfig(), home: Path | None = None) -> PreferenceModel:
    """`fit_preferences(dataset, config)`, read from the cache in `home` (default `recarena_home()`) when it holds
    this fit, else fitted and stored there. The arrays are the very ones a fresh fit gives on this machine."""
    if os.environ.get(CACHE_SWITCH, "1") == "0":
        return fit_preferences(dataset, config)
    path = (home or recarena_home()) / "preferences" / f"{preference_key(dataset, config)[:32]}.npz"
    if path.exists():
        model = _load(path, dataset)
        if model is not None:
            return model
    model = fit_preferences(dataset, config)
    _store(path, model)
    return model
