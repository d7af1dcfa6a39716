"""All three user kinds on real ml-100k users with the real embedded SmolLM2 (and real MiniLM memory)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.requires("llama_cpp")

from recarena.agents.calibration import calibrate_blend  # noqa: E402
from recarena.agents.checker import check_user  # noqa: E402
from recarena.agents.contract import SessionContext  # noqa: E402
from recarena.agents.llm import LLMConfig, make_llm  # noqa: E402
from recarena.agents.persona import PERSONA_TRAITS, enrich_profiles  # noqa: E402


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    llm = make_llm("embedded", LLMConfig(cache_path=tmp_path_factory.mktemp("llm") / "cache.sqlite", progress=False))
    yield llm
    llm.close() if hasattr(llm, "close") else None


def first_page(kit, user: int, size: int = 5) -> list[int]:
    popularity = np.bincount(kit.history.interactions["item"], minlength=kit.history.n_items)
    order = np.argsort(-popularity)
    return [int(i) for i in order if i not in kit.preferences.seen[user]][:size]


def test_llm_user_with_memory_runs_pages_and_passes_the_contract(ml100k_kit, embedded):
    from recarena.agents.llm.embeddings import MiniLMEmbedder
    from recarena.agents.memory import Memory

    kit = ml100k_kit
    memory = Memory(MiniLMEmbedder(), item_genres=kit.history.items["genres"].tolist())
    user = kit.llm_user(0, np.random.default_rng(0), embedded, memory=memory)
    page = first_page(kit, 0)
    check_user(user, [page, first_page(kit, 0, 10)[5:]])
    assert any(r.kind == "factual" for r in memory.records)
    user.start_session(SessionContext(text=True))
    unusable_before = embedded.accountant.total().unusable_texts
    reaction = user.view_page(page[:3])
    # Each reason with the anti-repetition settings reads like a sentence, or is dropped and counted as unusable text.
    dropped = sum(not r.reason for r in reaction.items)
    assert embedded.accountant.total().unusable_texts - unusable_before >= dropped and reaction.feeling
    assert user.fallbacks == 0
    # Every decision names the LLM call behind it, and each id finds its answer in the cache.
    assert len(reaction.llm_calls) >= len(page[:3]) + 1
    assert all(embedded.cache.get(call) is not None for call in reaction.llm_calls)


def test_hybrid_user_is_calibrated_on_held_out_data_and_runs_a_page(ml100k_kit, ml100k_holdout, embedded):
    kit = ml100k_kit
    blend = calibrate_blend(kit, ml100k_holdout.test, embedded, n_users=6, positives_per_user=2, negatives=2, progress=False)
    nll, objective = blend.fitted_on["watch_nll"], blend.fitted_on["watch_objective"]
    # The pool nests the preference-only model, so its MAP objective can only match or beat that one's on the data it
    # was fitted on; and with the preference model in it, it beats the LLM alone.
    assert objective["pooled"] <= objective["preference_only"] + 1e-6
    assert nll["pooled"] < nll["llm_only"]
    user = kit.hybrid_user(1, np.random.default_rng(0), embedded, blend)
    check_user(user, [first_page(kit, 1), first_page(kit, 1, 10)[5:]])


def test_statistical_user_runs_beside_them(ml100k_kit):
    user = ml100k_kit.statistical_user(2, np.random.default_rng(0))
    check_user(user, [first_page(ml100k_kit, 2), first_page(ml100k_kit, 2, 10)[5:]])


def test_persona_from_the_real_model(ml100k_kit, embedded):
    profiles = [ml100k_kit.profiles[0]]
    report = enrich_profiles(profiles, embedded, n_samples=2)
    profile = profiles[0]
    assert report.users == 1 and report.invalid_answers <= 3  # one summary and two persona samples were asked
    if report.invalid_answers == 0:  # every answer valid: two samples compared trait by trait, and a summary unless it was a fragment
        assert (isinstance(profile.taste_summary, str) and profile.taste_summary.strip()) or report.unusable_summaries == 1
        assert profile.persona_agreement is not None
    if profile.persona_agreement is None:  # fewer than two valid samples: nothing kept, nothing counted
        assert profile.persona == {} and report.agreement_rate == 0.0
    else:  # the report's rate is the traits the two samples agreed on, as the profile holds them
        assert set(profile.persona) <= set(PERSONA_TRAITS) and all(isinstance(v, str) for v in profile.persona.values())
        assert report.agreement_rate == profile.persona_agreement == len(profile.persona) / len(PERSONA_TRAITS)
