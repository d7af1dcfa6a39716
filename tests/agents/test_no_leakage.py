"""Nothing held out reaches a profile, a preference model or a prompt used for evaluation."""

from __future__ import annotations

import numpy as np

from recarena.agents.llm import ScoreReply


class RecordingLLM:
    def __init__(self):
        self.requests = []

    def score_many(self, requests, options, **kwargs):
        self.requests.extend(requests)
        return [ScoreReply(probabilities={o: 1 / len(options) for o in options}) for _ in requests]

    def score(self, messages, options, **kwargs):
        return self.score_many([messages], options)[0]


def test_held_out_interactions_never_reach_users_built_from_the_training_part(ml100k_kit, ml100k_holdout):
    kit, split = ml100k_kit, ml100k_holdout
    train_items = split.train.groupby("user")["item"].apply(set).to_dict()
    held_out = split.test.groupby("user")["item"].apply(set).to_dict()
    titles = kit.history.items["title"].to_numpy()
    assert kit.history.n_interactions == len(split.train)
    for user, items in held_out.items():
        assert not (kit.preferences.seen[user] & items)
        profile = kit.profiles[user]
        assert profile.activity == len(train_items.get(user, ()))
        allowed = {titles[i] for i in train_items.get(user, ())}
        assert set(profile.liked_titles + profile.disliked_titles) <= allowed


def test_prompts_carry_no_held_out_item_beyond_the_one_asked_about(ml100k_kit, ml100k_holdout):
    kit, split = ml100k_kit, ml100k_holdout
    titles = kit.history.items["title"].to_numpy()
    texts = kit.history.items["text"].to_numpy()
    held_out = split.test.groupby("user")["item"].apply(list).to_dict()
    train_titles = split.train.groupby("user")["item"].apply(lambda s: {titles[i] for i in s}).to_dict()
    for user in list(held_out)[:25]:
        llm = RecordingLLM()
        items = held_out[user][:5]
        probe = kit.llm_user(user, np.random.default_rng(0), llm)
        probe.watch_probabilities(items)
        probe.rating_probabilities(items)
        secret = {titles[i] for i in held_out[user]} - train_titles.get(user, set())
        for messages in llm.requests:
            system = messages[0]["content"]
            assert not any(f"{t};" in system or f"{t}." in system for t in secret), "a held-out title reached the profile prompt"
            question = messages[-1]["content"]
            assert sum(texts[i] in question for i in held_out[user]) <= 1  # only the item being asked about
