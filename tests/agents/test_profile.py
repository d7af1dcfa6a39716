"""Profiles: each trait against its formula on a hand-made history, and on the real ml-100k."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from recarena.agents.profile import ProfileConfig, build_profiles, item_descriptions, item_text_version, load_profiles, save_profiles
from recarena.simulator.data import Dataset


def tiny() -> Dataset:
    items = pd.DataFrame(
        {
            "raw_id": ["a", "b", "c", "d"],
            "title": ["Alien", "Aliens", "Titanic", "Heat"],
            "genres": [["Sci-Fi"], ["Sci-Fi", "Action"], ["Romance"], ["Action"]],
        }
    )
    interactions = pd.DataFrame(
        {
            "user": ["fan", "fan", "fan", "crowd", "crowd", "crowd", "new"],
            "item": ["a", "b", "c", "a", "c", "d", "d"],
            "rating": [5, 5, 1, 3, 3, 4, 2],
            "timestamp": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    return Dataset.from_frames("tiny", interactions, items)


def test_traits_follow_their_formulas():
    data = tiny()
    profiles = {p.raw_id: p for p in build_profiles(data, ProfileConfig(min_history=2))}
    fan = profiles["fan"]
    assert fan.activity == 3
    # item means: a=(5+3)/2=4, b=5, c=(1+3)/2=2 -> gaps |5-4|, |5-5|, |1-2| -> mean 2/3
    assert fan.conformity_gap == pytest.approx(2 / 3)
    # genre mass: Sci-Fi 1 + 0.5, Action 0.5, Romance 1 -> shares 0.5, 1/6, 1/3 over G=3 genres
    shares = [0.5, 1 / 6, 1 / 3]
    assert fan.diversity == pytest.approx(-sum(s * math.log(s) for s in shares) / math.log(3))
    assert fan.liked_genres[0] == "Sci-Fi" and fan.disliked_genres == ["Romance"]
    assert fan.liked_titles == ["Aliens", "Alien"] and fan.disliked_titles == ["Titanic"]
    assert profiles["new"].thin and not fan.thin


def test_items_without_genres_count_for_no_genre():
    """GroupLens's ml-100k has items whose only genre is "unknown", which its reader drops: empty genre lists."""
    data = tiny()
    items = data.items[["raw_id", "title"]].assign(genres=[["Sci-Fi"], [], ["Romance"], []])
    raw = data.interactions.assign(user=data.users["raw_id"].to_numpy()[data.interactions["user"]],
                                   item=data.items["raw_id"].to_numpy()[data.interactions["item"]])  # fmt: skip
    profiles = {p.raw_id: p for p in build_profiles(Dataset.from_frames("tiny", raw, items), ProfileConfig(min_history=2))}
    # fan: a (Sci-Fi, 5), b (no genre, 5), c (Romance, 1): only a and c carry genre mass, one unit each.
    assert profiles["fan"].diversity == pytest.approx(1.0)
    assert profiles["fan"].liked_genres == ["Sci-Fi"] and profiles["fan"].disliked_genres == ["Romance"]
    assert profiles["new"].liked_genres == profiles["new"].disliked_genres == []  # its one item has no genre


def test_conformity_tier_is_high_for_users_who_rate_like_the_crowd(ml100k):
    profiles = build_profiles(ml100k)
    by_tier = {t: [p.conformity_gap for p in profiles if p.conformity_tier == t] for t in ("low", "high")}
    assert max(by_tier["high"]) <= min(by_tier["low"])
    assert {p.activity_tier for p in profiles} == {"low", "medium", "high"}


def test_a_sci_fi_lover_profile_says_so(ml100k):
    profiles = build_profiles(ml100k)
    sci_fi_first = [p for p in profiles if p.liked_genres[:1] == ["Sci-Fi"]]
    assert sci_fi_first, "some ml-100k user must love sci-fi most"
    assert "You like Sci-Fi" in sci_fi_first[0].describe()


def test_profiles_round_trip_through_json(tmp_path, ml100k):
    profiles = build_profiles(ml100k)[:20]
    save_profiles(profiles, tmp_path / "profiles.json")
    assert load_profiles(tmp_path / "profiles.json") == profiles


def test_a_user_without_history_gets_a_thin_profile_and_a_working_statistical_user():
    import numpy as np

    from recarena.agents.checker import check_user
    from recarena.agents.kit import build_user_kit
    from recarena.agents.preferences import PreferenceConfig

    data = tiny()
    users = pd.DataFrame({"raw_id": ["fan", "crowd", "new", "ghost"], "age": [30, 40, 50, 60]})
    data = Dataset.from_frames("tiny", data.interactions.assign(
        user=data.users["raw_id"].to_numpy()[data.interactions["user"]], item=data.items["raw_id"].to_numpy()[data.interactions["item"]]
    ), data.items[["raw_id", "title", "genres"]], users)  # fmt: skip
    kit = build_user_kit(data, preference_config=PreferenceConfig(epochs=5))
    ghost = kit.profiles[data.user_index("ghost")]
    assert ghost.thin and ghost.activity == 0 and ghost.liked_genres == []
    check_user(kit.statistical_user(ghost.user, np.random.default_rng(0)), [[0, 1], [2, 3]])


def test_items_are_described_with_their_popularity_and_mean_rating_in_the_history_given():
    data = tiny()
    texts = dict(zip(data.items["raw_id"], item_descriptions(data)))
    # a: 2 of 3 users, ratings 5 and 3; b: 1 of 3, rating 5
    assert texts["a"] == "Alien; genres: Sci-Fi; watched by 67% of users; average rating 4.0 of 5"
    assert texts["b"].endswith("; watched by 33% of users; average rating 5.0 of 5")
    assert item_descriptions(data, ProfileConfig(item_statistics=False)) == data.items["text"].tolist()
    # The statistics are the given history's only: a part without the fan's ratings describes b as never watched.
    without_fan = data.with_interactions(data.interactions[data.interactions["user"] != data.user_index("fan")], name="part")
    assert dict(zip(data.items["raw_id"], item_descriptions(without_fan)))["b"] == "Aliens; genres: Sci-Fi, Action; not watched by anyone yet"
    assert item_text_version() == 2 and item_text_version(ProfileConfig(item_statistics=False)) == 1
