"""The tune-llm tests' data (the small synthetic dataset as RecBole atomic files) and tiny base model
(tests/agents/tuning/tiny.py: a 2-layer random Llama with a small BPE tokenizer)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("tune")
TINY = Path(__file__).resolve().parents[2] / "agents" / "tuning" / "tiny.py"


@pytest.fixture(scope="session")
def synthetic_folder(small_synthetic, tmp_path_factory) -> Path:
    from recarena.simulator.data.formats import write_atomic

    folder = tmp_path_factory.mktemp("synthetic-atomic")
    write_atomic(small_synthetic, folder, "synthetic")
    return folder


@pytest.fixture(scope="session")
def tiny_base(small_synthetic, tmp_path_factory, require) -> Path:
    require("tune")
    from recarena.simulator.data.splits import leave_one_out

    spec = importlib.util.spec_from_file_location("tuning_tiny", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_base_for(leave_one_out(small_synthetic).train_dataset(), tmp_path_factory.mktemp("tiny-base"))
