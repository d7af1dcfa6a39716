"""`calibrate_on_validation`: the hybrid users' blend is fitted on a split's validation part, never its test part."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import recarena.agents.calibration as calibration
from recarena.agents.kit import build_user_kit
from recarena.agents.language_user import LLM_ONLY
from recarena.agents.preferences import PreferenceConfig
from recarena.simulator.data.splits import leave_one_out

PLANTED_TIMESTAMP = 4_102_444_800  # 2100-01-01: no real interaction is this late


def with_planted_test_interaction(split):
    """`split` whose test part also holds one recognisable interaction (user 0, a far-future timestamp)."""
    planted = split.test.iloc[:1].assign(user=0, timestamp=PLANTED_TIMESTAMP)
    return dataclasses.replace(split, test=pd.concat([split.test, planted], ignore_index=True))


@pytest.fixture
def fitted_on(monkeypatch):
    """Every frame handed to the blend fitting (`calibrate_blend`), which is replaced by a recorder."""
    frames: list[pd.DataFrame] = []

    def recorder(kit, held_out, llm, **settings):
        frames.append(held_out)
        return LLM_ONLY

    monkeypatch.setattr(calibration, "calibrate_blend", recorder)
    return frames


def test_only_validation_interactions_reach_the_blend_fitting(small_synthetic, fitted_on):
    split = with_planted_test_interaction(leave_one_out(small_synthetic))
    kit = build_user_kit(split.train_dataset(), seed=0, preference_config=PreferenceConfig(epochs=5, seed=0))
    calibration.calibrate_on_validation(kit, split, object(), n_users=50, positives_per_user=2, seed=0, progress=False)
    [frame] = fitted_on
    assert PLANTED_TIMESTAMP not in set(frame["timestamp"])
    test_rows = set(zip(split.test["user"], split.test["item"], split.test["timestamp"]))
    assert not test_rows & set(zip(frame["user"], frame["item"], frame["timestamp"]))
    pd.testing.assert_frame_equal(frame, split.valid)
