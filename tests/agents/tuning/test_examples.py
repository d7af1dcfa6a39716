"""The tuning examples: the LLM user's own prompts, built from the training part alone, with the real answers."""

from __future__ import annotations

import re
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

from recarena.agents.language_user import LanguageUser
from recarena.agents.profile import item_descriptions, profile_text_digest
from recarena.agents.tuning import examples as examples_module
from recarena.agents.tuning.examples import ExampleConfig, build_examples, prompt_versions
from recarena.simulator.data.dataset import per_user


class RecordingLLM:
    """Records what a LanguageUser asks and answers every option evenly."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, str]]] = []

    def score_many(self, requests, options, component=""):
        self.requests.extend(requests)
        return [SimpleNamespace(ok=True, probabilities={o: 1 / len(options) for o in options}, call_id="") for _ in requests]


def test_the_examples_are_the_messages_the_llm_user_sends(train_part):
    examples = build_examples(train_part, ExampleConfig(users=4))
    profiles = {}
    real_build = examples_module.build_profiles
    profiles_of = lambda data, config: profiles.setdefault("all", real_build(data, config))  # noqa: E731
    examples_module.build_profiles, saved = profiles_of, real_build
    try:
        assert build_examples(train_part, ExampleConfig(users=4)) == examples
    finally:
        examples_module.build_profiles = saved
    behaviour = SimpleNamespace(preferences=SimpleNamespace(seen=defaultdict(list)))
    texts = item_descriptions(train_part)  # as the users' kit describes items (UserKit.item_texts)
    for example in examples:
        llm = RecordingLLM()
        user = LanguageUser(profiles["all"][example.user], behaviour, np.random.default_rng(0), texts, llm)
        if example.question == "watch":
            page, position = map(int, re.search(r"page (\d+) .* Suggestion (\d+):", example.messages[1]["content"]).groups())
            user._llm_watch([example.item] * position, page=page - 1)
        else:
            user._llm_ratings([example.item])
        assert tuple(llm.requests[-1]) == example.messages
    assert prompt_versions() == {"system": 1, "watch": 1, "rate": 1, "item": 2, "profile": profile_text_digest()}


def test_rewording_the_profile_text_changes_the_prompt_versions_an_adapter_must_match(monkeypatch):
    from recarena.agents.profile import UserProfile
    from recarena.agents.tuning.examples import same_prompts

    today = prompt_versions()
    assert same_prompts(today, today)
    before_profile_digests = {k: v for k, v in today.items() if k != "profile"}  # the shipped adapter's manifest, say
    assert same_prompts(before_profile_digests, today)
    assert not same_prompts({**before_profile_digests, "rate": 0}, today) and not same_prompts(None, today)
    written = UserProfile.describe
    monkeypatch.setattr(UserProfile, "describe", lambda self: written(self) + " You rate movies 3.6 of 5 on average.")
    reworded = prompt_versions()
    assert reworded["profile"] != today["profile"]
    assert not same_prompts(today, reworded)  # an adapter tuned on the old wording is refused


def test_positives_are_each_users_last_training_items_and_negatives_items_it_never_had(train_part):
    config = ExampleConfig(users=25, targets=3, negatives=2)
    examples = build_examples(train_part, config, seed=3)
    histories = per_user(train_part.interactions, train_part.n_users)
    ratings = per_user(train_part.interactions, train_part.n_users, "rating")
    by_user = defaultdict(list)
    for e in examples:
        by_user[e.user].append(e)
    assert len(by_user) == 25
    for user, mine in by_user.items():
        k = min(3, len(histories[user]) - config.min_history)  # the history keeps min_history items
        yes = [e.item for e in mine if e.answer == "Yes"]
        assert sorted(yes) == sorted(histories[user][-k:].tolist())
        assert not {e.item for e in mine if e.answer == "No"} & set(histories[user].tolist())
        assert sum(e.answer == "No" for e in mine) == 2 * k
        stars = sorted(int(e.answer) for e in mine if e.question == "rate")
        assert stars == sorted(int(r) for r in ratings[user][-k:])
        assert len({e.messages[0]["content"] for e in mine}) == 1  # one profile per user
    assert build_examples(train_part, config, seed=3) == examples  # seeded
    assert build_examples(train_part, config, seed=4) != examples


def test_a_profile_never_sees_the_items_it_is_asked_about(train_part, monkeypatch):
    seen = []
    real = examples_module.build_profiles
    monkeypatch.setattr(examples_module, "build_profiles", lambda data, config: seen.append(data) or real(data, config))
    examples = build_examples(train_part, ExampleConfig(users=40, targets=2))
    (history,) = seen
    rows = set(zip(history.interactions["user"], history.interactions["item"], history.interactions["timestamp"]))
    positives = [(e.user, e.item, e.timestamp) for e in examples if e.timestamp is not None]
    assert positives and not rows & set(positives)
    assert len(history.interactions) == len(train_part.interactions) - len({p for p in positives})


@pytest.mark.parametrize("field, value", [("targets", 0), ("negatives", -1), ("users", -2), ("pages", 0)])
def test_bad_settings_name_the_field(train_part, field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        build_examples(train_part, ExampleConfig(**{field: value}))
