"""The tuning tests' base model: a tiny random Llama with a small BPE tokenizer (tiny.py), built once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("tune")


def load_tiny():
    """tiny.py, loaded by path (tests are not a package; the scenario tests load it the same way)."""
    spec = importlib.util.spec_from_file_location("tuning_tiny", Path(__file__).with_name("tiny.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def train_part(small_synthetic):
    """The training part of the small synthetic dataset's leave-one-out split."""
    from recarena.simulator.data.splits import leave_one_out

    return leave_one_out(small_synthetic).train_dataset()


@pytest.fixture(scope="session")
def tiny_base(train_part, tmp_path_factory, require) -> Path:
    """A local Hugging Face folder: a 2-layer Llama (hidden 32) whose tokenizer was trained on the users' prompts."""
    require("tune")
    return load_tiny().tiny_base_for(train_part, tmp_path_factory.mktemp("tiny-base"))
