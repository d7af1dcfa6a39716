"""The LLM parts of profiles, with a scripted chat model (the real backends are tested in tests/agents/llm)."""

from __future__ import annotations

import pytest

from recarena.agents.llm import ChatReply
from recarena.agents.persona import PersonaAnswer, TasteSummary, enrich_profiles
from recarena.agents.profile import build_profiles


class ScriptedChat:
    """Answers by seed: openness flips with the seed, the other traits never change; user 1 always fails."""

    def __init__(self):
        self.calls = []

    def chat_many(self, requests, schema, *, params, component):
        self.calls.append((schema, params["seed"], component, len(requests)))
        replies = []
        for index, _ in enumerate(requests):
            if index == 1:
                replies.append(ChatReply(text="nonsense", parsed=None, ok=False, error="not JSON"))
            elif schema is TasteSummary:
                replies.append(ChatReply(text="", parsed=TasteSummary(summary="You enjoy dark thrillers.")))
            else:
                answer = PersonaAnswer(
                    openness="high" if params["seed"] % 2 else "low",
                    conscientiousness="medium", extraversion="low", agreeableness="high",
                    neuroticism="medium", viewing_motive="escapism",
                )  # fmt: skip
                replies.append(ChatReply(text="", parsed=answer))
        return replies


def test_only_traits_that_agree_across_seeds_are_kept(ml100k):
    profiles = build_profiles(ml100k)[:3]
    chat = ScriptedChat()
    report = enrich_profiles(profiles, chat, n_samples=3, seed=0)
    assert [c[1] for c in chat.calls] == [0, 1, 2, 3]  # summary, then one persona batch per seed
    first = profiles[0]
    assert first.taste_summary == "You enjoy dark thrillers."
    assert "openness" not in first.persona and first.persona["viewing_motive"] == "escapism"
    assert first.persona_agreement == pytest.approx(5 / 6)
    assert profiles[1].persona == {} and profiles[1].persona_agreement is None and profiles[1].taste_summary is None
    assert report.agreement_rate == pytest.approx(5 / 6) and report.invalid_answers == 4
    assert "Personality:" in first.describe()


def test_majority_rule_keeps_more_when_asked_to(ml100k):
    profiles = build_profiles(ml100k)[:1]
    enrich_profiles(profiles, ScriptedChat(), n_samples=3, min_agreement=0.6)
    assert profiles[0].persona["openness"] == "high"  # seeds 1 and 3 say high, seed 2 says low
    with pytest.raises(ValueError, match="n_samples >= 2"):
        enrich_profiles(profiles, ScriptedChat(), n_samples=1)
