"""The A/B test's world (`recarena.scenarios.ab.world`): built from a `WorldSpec`, with nothing held out for
evaluation reaching a user model."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import recarena.agents.calibration as calibration
import recarena.agents.llm as llm_layer
import recarena.scenarios.ab.world as world_module
from recarena.agents.language_user import LLM_ONLY
from recarena.scenarios.ab.scenario import ABConfig
from recarena.scenarios.ab.world import build_world
from recarena.simulator.data.splits import leave_one_out

PLANTED_TIMESTAMP = 4_102_444_800  # 2100-01-01: no real interaction is this late


def test_the_spec_carries_what_the_config_says():
    spec = ABConfig(arms="pop,bpr,pop", model_params=["bpr.dim=8"], user_kind="hybrid", calibration_users=7, seed=3,
                    progress=False).world_spec()  # fmt: skip
    assert spec.models == ("pop", "bpr") and spec.model_params == {"bpr": {"dim": "8"}}
    assert (spec.user_kind, spec.calibration_users, spec.seed, spec.progress) == ("hybrid", 7, 3, False)


def test_hybrid_users_are_calibrated_without_the_test_interactions(small_synthetic, monkeypatch):
    split = leave_one_out(small_synthetic)
    recognisable = split.test.iloc[:1].assign(user=0, timestamp=PLANTED_TIMESTAMP)
    planted = dataclasses.replace(split, test=pd.concat([split.test, recognisable], ignore_index=True))
    monkeypatch.setattr(world_module, "load_dataset", lambda name: small_synthetic)
    monkeypatch.setattr(world_module, "leave_one_out", lambda dataset: planted)
    monkeypatch.setattr(llm_layer, "build_llm", lambda spec, cache, **settings: object())
    fitted_on = []
    monkeypatch.setattr(calibration, "calibrate_blend", lambda kit, held_out, llm, **settings: fitted_on.append(held_out) or LLM_ONLY)
    world = build_world(ABConfig(arms="pop,random", user_kind="hybrid", calibration_users=30, progress=False).world_spec())
    assert world.blend is LLM_ONLY and len(fitted_on) == 1
    assert PLANTED_TIMESTAMP not in set(fitted_on[0]["timestamp"])
    assert set(fitted_on[0]["user"]) <= set(planted.valid["user"]) and len(fitted_on[0]) == len(planted.valid)


@pytest.mark.parametrize("texts, message", [(["bpr"], "MODEL.name=value"), (["sasrec.dim=8"], "MODEL one of")])
def test_bad_model_params_name_the_option(texts, message):
    with pytest.raises(Exception, match=f"model_params: .*{message}"):
        ABConfig(arms="pop,bpr", model_params=texts).world_spec()


@pytest.mark.parametrize("user_model", ["dynamic", "static"])
def test_the_users_dynamics_are_fitted_on_validation_only(small_synthetic, monkeypatch, user_model):
    """The users' dynamics see the validation part, never the test part; static users fit none."""
    import recarena.agents.kit as kit_module

    split = leave_one_out(small_synthetic)
    recognisable = split.test.iloc[:1].assign(user=0, timestamp=PLANTED_TIMESTAMP)
    planted = dataclasses.replace(split, test=pd.concat([split.test, recognisable], ignore_index=True))
    monkeypatch.setattr(world_module, "load_dataset", lambda name: small_synthetic)
    monkeypatch.setattr(world_module, "leave_one_out", lambda dataset: planted)
    fitted_on = []
    real_fit = kit_module.fit_dynamics
    monkeypatch.setattr(kit_module, "fit_dynamics", lambda history, held_out, *rest: fitted_on.append((history, held_out)) or real_fit(history, held_out, *rest))
    world = build_world(ABConfig(arms="pop,random", user_model=user_model, progress=False).world_spec())
    if user_model == "static":
        assert not fitted_on and world.kit.behaviour.dynamics is None
        return
    (history, held_out), = fitted_on
    assert held_out.equals(planted.valid) and PLANTED_TIMESTAMP not in set(history.interactions["timestamp"])
    assert len(history.interactions) == len(planted.train)  # the users' history is the training part alone
    assert world.kit.behaviour.dynamics is not None and world.kit.dynamics_report is not None
