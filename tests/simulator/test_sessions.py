"""`show_pages` asks users through their contract: who shares a batch behaviour is decided in one call."""

from __future__ import annotations

import numpy as np

from recarena.agents.contract import Interview, ItemReaction, PageReaction, SessionContext, SimulatedUser
from recarena.simulator.sessions import show_pages


class TopPick:
    """A batch behaviour: every user watches the first item of its slate; counts its calls."""

    def __init__(self):
        self.calls = 0

    def view_pages(self, users, slates):
        self.calls += 1
        return [user.react(slate) for user, slate in zip(users, slates)]


class FirstItemFan(SimulatedUser):
    """Not a statistical user: it declares its batch behaviour through the contract."""

    def __init__(self, behaviour):
        self.behaviour, self.rng, self.pages_alone = behaviour, np.random.default_rng(0), 0

    def react(self, slate):
        return PageReaction(tuple(ItemReaction(int(i), k == 0, 4 if k == 0 else None) for k, i in enumerate(slate)), leave=False)

    def batch_behaviour(self):
        return self.behaviour

    def view_page(self, items):
        self.pages_alone += 1
        return self.react(items)

    def start_session(self, context: SessionContext) -> None: ...
    def interview(self) -> Interview: return Interview(5)  # noqa: E704
    def end_session(self) -> None: ...
    def watch_probabilities(self, items): return np.ones(len(items))  # noqa: E704
    def rating_probabilities(self, items): return np.full((len(items), 5), 0.2)  # noqa: E704
    def get_state(self): return {}  # noqa: E704
    def set_state(self, state) -> None: ...


def test_a_user_type_that_declares_a_batch_behaviour_is_batched():
    behaviour = TopPick()
    users = [FirstItemFan(behaviour) for _ in range(5)]
    slates = [[3 * u, 3 * u + 1, 3 * u + 2] for u in range(5)]
    got = show_pages(users, slates)
    assert behaviour.calls == 1 and sum(u.pages_alone for u in users) == 0  # one vectorised call, no page one by one
    assert got == [u.react(s) for u, s in zip(users, slates)]


def test_users_without_a_batch_behaviour_view_their_pages_one_by_one():
    behaviour = TopPick()
    users = [FirstItemFan(behaviour) for _ in range(3)]
    for user in users:
        user.batch_behaviour = lambda: None  # declines the batch
    show_pages(users, [[1, 2], [3, 4], [5, 6]], threads=1)
    assert behaviour.calls == 0 and [u.pages_alone for u in users] == [1, 1, 1]
