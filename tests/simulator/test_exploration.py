"""The one slate-policy type: its settings, their validation, and how deep it asks the recommender."""

from __future__ import annotations

import pytest

from recarena.simulator.exploration import SlatePolicy


@pytest.mark.parametrize(("policy", "field"), [
    (SlatePolicy(epsilon=1.5), "epsilon"), (SlatePolicy(epsilon=-0.1), "epsilon"),
    (SlatePolicy(page_epsilon=2.0), "page_epsilon"), (SlatePolicy(mmr=1.0), "mmr"), (SlatePolicy(pool=0), "pool"),
])  # fmt: skip
def test_an_impossible_setting_is_refused_naming_its_field(policy, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        policy.validate()


def test_the_policy_asks_for_its_pool_only_when_it_reranks_or_explores_pages():
    assert SlatePolicy().plain and SlatePolicy().depth(10) == 10
    assert SlatePolicy(epsilon=0.2, pool=50).depth(10) == 10  # slots explore the catalogue, not the ranking
    assert SlatePolicy(mmr=0.3, pool=50).depth(10) == 50
    assert SlatePolicy(page_epsilon=0.1, pool=50).depth(10) == 50 and not SlatePolicy(page_epsilon=0.1).plain
    assert SlatePolicy(page_epsilon=0.1, pool=5).depth(10) == 10


def test_a_policy_without_page_exploration_is_recorded_as_before():
    assert SlatePolicy(epsilon=0.2).recorded() == {"epsilon": 0.2, "mmr": 0.0, "pool": 100}
    assert SlatePolicy(page_epsilon=0.1, pool=50).recorded()["page_epsilon"] == 0.1
