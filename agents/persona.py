"""The LLM-written parts of a profile: a taste summary, and a SimUSER-style persona.

The persona (Big Five levels and a main viewing motive) is asked `n_samples`
times with different sampling seeds; a trait is kept only where at least
`min_agreement` of the valid answers give the same value (self-consistency), and
the share of traits kept is reported. Answers that fail validation are the LLM
layer's counted fallbacks; here they are simply not votes. A taste summary that
is a fragment (a title, one word, a stutter) is dropped and counted as unusable
text, the profile then describes the viewer without it. Everything goes
through the LLM layer, so a warm cache makes a rerun free and identical.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from .llm.text import FREE_TEXT_IN_JSON, usable_or_none
from .profile import UserProfile

Level = Literal["low", "medium", "high"]
Motive = Literal["escapism", "excitement", "learning", "comfort", "social", "art"]


class PersonaAnswer(BaseModel):
    """What the LLM is asked to infer about a viewer from their history."""

    openness: Level = Field(description="Openness to experience")
    conscientiousness: Level = Field(description="Conscientiousness")
    extraversion: Level = Field(description="Extraversion")
    agreeableness: Level = Field(description="Agreeableness")
    neuroticism: Level = Field(description="Neuroticism")
    viewing_motive: Motive = Field(description="Main reason this person watches movies")


class TasteSummary(BaseModel):
    """A short description of a viewer's taste in the second person."""

    summary: str = Field(max_length=400, description="Two sentences on what the viewer enjoys and avoids")


PERSONA_TRAITS = tuple(PersonaAnswer.model_fields)


@dataclass(frozen=True)
class PersonaReport:
    """How the LLM parts of a batch of profiles came out."""

    users: int
    agreement_rate: float
    """Traits kept / traits asked, over all users with at least two valid answers."""
    invalid_answers: int
    """Persona or summary answers that failed validation (the LLM layer counted and logged each)."""
    unusable_summaries: int = 0
    """Valid taste summaries dropped as fragments (counted by the LLM layer as unusable text)."""


def _history_prompt(profile: UserProfile) -> list[dict[str, str]]:
    facts = [
        f"Liked genres: {', '.join(profile.liked_genres) or 'none clear'}.",
        f"Disliked genres: {', '.join(profile.disliked_genres) or 'none clear'}.",
        f"Movies loved: {'; '.join(profile.liked_titles) or 'none'}.",
        f"Movies disliked: {'; '.join(profile.disliked_titles) or 'none'}.",
        f"Movies rated: {profile.activity}; taste diversity {profile.diversity_tier}; "
        f"agreement with popular opinion {profile.conformity_tier}.",
    ]
    return [
        {"role": "system", "content": "You analyse movie viewers from their rating history. Answer in JSON."},
        {"role": "user", "content": "\n".join(facts)},
    ]


def _majority(values: list[str], min_agreement: float) -> str | None:
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value if count / len(values) >= min_agreement else None


def enrich_profiles(
    profiles: list[UserProfile],
    llm: Any,
    *,
    n_samples: int = 3,
    min_agreement: float = 1.0,
    seed: int = 0,
    temperature: float = 0.8,
) -> PersonaReport:
    """Fill each profile's `taste_summary`, `persona` and `persona_agreement` in place.

    `llm` is a `recarena.agents.llm.ChatModel` (its `chat_many` sends the batch at once).
    """
    if n_samples < 2:
        raise ValueError("self-consistency needs n_samples >= 2")
    prompts = [_history_prompt(p) for p in profiles]
    summaries = llm.chat_many(
        [m + [{"role": "user", "content": "Summarise this viewer's taste in two sentences, addressing them as 'you'."}] for m in prompts],
        TasteSummary,
        params={**FREE_TEXT_IN_JSON, "seed": seed},
        component="profile.taste",
    )
    samples = [
        llm.chat_many(
            [m + [{"role": "user", "content": "Infer this viewer's personality and main viewing motive."}] for m in prompts],
            PersonaAnswer,
            params={"temperature": temperature, "seed": seed + 1 + s},
            component="profile.persona",
        )
        for s in range(n_samples)
    ]
    invalid = sum(not r.ok for r in summaries) + sum(not r.ok for batch in samples for r in batch)
    kept = asked = unusable = 0
    accountant = getattr(llm, "accountant", None)
    for index, profile in enumerate(profiles):
        reply = summaries[index]
        profile.taste_summary = None
        if reply.ok and reply.parsed is not None:
            profile.taste_summary = usable_or_none(reply.parsed.summary, prompt=prompts[index][-1]["content"], accountant=accountant,
                                                   component="profile.taste")  # fmt: skip
            unusable += profile.taste_summary is None
        answers = [batch[index].parsed for batch in samples if batch[index].ok and batch[index].parsed is not None]
        profile.persona = {}
        if len(answers) < 2:
            profile.persona_agreement = None
            continue
        for trait in PERSONA_TRAITS:
            value = _majority([getattr(a, trait) for a in answers], min_agreement)
            if value is not None:
                profile.persona[trait] = value
        profile.persona_agreement = len(profile.persona) / len(PERSONA_TRAITS)
        kept += len(profile.persona)
        asked += len(PERSONA_TRAITS)
    return PersonaReport(users=len(profiles), agreement_rate=kept / asked if asked else 0.0, invalid_answers=invalid,
                         unusable_summaries=unusable)  # fmt: skip
