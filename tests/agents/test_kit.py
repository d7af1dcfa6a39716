"""`UserKit.factory`: one call turns a user kind (and an LLM, and a blend) into the maker of such users."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from recarena.agents.contract import SessionContext
from recarena.agents.kit import build_user_kit
from recarena.agents.language_user import LLM_ONLY, Blend, LanguageUser
from recarena.agents.preferences import PreferenceConfig
from recarena.agents.statistical import StatisticalUser

BLEND = Blend(watch_llm=0.5, watch_preference=1.0, rating_llm=0.5, rating_preference=1.0, llm_decides_leaving=False)


class _Unused:
    """Stands for an LLM: making a user asks it nothing."""


@pytest.fixture(scope="module")
def kit(small_synthetic):
    return build_user_kit(small_synthetic, seed=0, preference_config=PreferenceConfig(epochs=5, seed=0))


def test_statistical_users_need_no_llm(kit):
    user = kit.factory("statistical")(3, np.random.default_rng(0))
    assert type(user) is StatisticalUser and user.profile is kit.profiles[3]


def test_llm_users_decide_with_the_llm_alone(kit):
    llm = _Unused()
    user = kit.factory("llm", llm)(3, np.random.default_rng(0))
    assert isinstance(user, LanguageUser) and user.llm is llm and user.blend == LLM_ONLY


def test_hybrid_users_pool_the_llm_with_the_calibrated_blend(kit):
    llm = _Unused()
    user = kit.factory("hybrid", llm, BLEND)(3, np.random.default_rng(0))
    assert isinstance(user, LanguageUser) and user.llm is llm and user.blend == BLEND


def test_the_same_seed_makes_the_same_user(kit):
    make = kit.factory("statistical")
    reactions = []
    for user in (make(5, np.random.default_rng(9)), make(5, np.random.default_rng(9))):
        user.start_session(SessionContext())
        reactions.append(user.view_page(list(range(10))))
    assert reactions[0] == reactions[1]


def test_makers_of_language_users_travel_to_workers(kit):
    make = pickle.loads(pickle.dumps(kit.factory("hybrid", _Unused(), BLEND)))
    assert make(3, np.random.default_rng(0)).blend == BLEND


@pytest.mark.parametrize("kind, llm, blend, message", [
    ("llm", None, None, "llm users need an LLM"),
    ("hybrid", None, BLEND, "hybrid users need an LLM"),
    ("hybrid", _Unused(), None, "calibrated blend"),
    ("bayesian", _Unused(), None, "unknown user kind 'bayesian'"),
])  # fmt: skip
def test_a_kind_without_what_it_needs_is_refused(kit, kind, llm, blend, message):
    with pytest.raises(ValueError, match=message):
        kit.factory(kind, llm, blend)
