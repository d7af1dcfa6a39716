"""The paired design's twins (`Twins`, `simulate_arm`): every arm meets each user from the same snapshot,
no arm's sessions leak into another's, and each arm draws its own luck (stream ``AB_SESSION``, keyed by arm).

The users' snapshot is made non-trivial on purpose (history ``had``, ``simulated_watches`` and a session
state with pages, shown and watched items), so that a twin that kept what an earlier arm did would show."""

from __future__ import annotations

import numpy as np
import pytest

import recarena.simulator.arm_sessions as arm_sessions
from recarena.recommenders import build_recommender
from recarena.simulator.arm_sessions import Twins, records_to_frames, simulate_arm
from recarena.simulator.data.streams import AB_SESSION

USERS = list(range(0, 80, 4))  # 20 users of the tiny world
SEED, PAGES, SLATE = 3, 3, 5


def _warmed(kit):
    """A factory of statistical users that already have a past when their snapshot is taken."""

    def make(u: int, rng: np.random.Generator):
        user = kit.statistical_user(u, rng)
        user.had |= {(u + 7) % 60, (u + 11) % 60}
        user.simulated_watches = [(u + 13) % 60]
        user.session.pages, user.session.shown, user.session.watched = 2, [1, 2, 3], [2]
        return user

    return make


def _without_rng(state):
    return {k: v for k, v in state.items() if k != "rng"}


def _comparable(state):
    """A user's state as plain values (the session dataclass compared field by field)."""
    s = dict(_without_rng(state))
    s["session"] = vars(s["session"]).copy()
    return s


@pytest.fixture(scope="module")
def recommenders(tiny_world):
    return {"pop": build_recommender("pop").fit(tiny_world), "random": build_recommender("random").fit(tiny_world)}


@pytest.fixture
def captured(monkeypatch):
    """Every seat's user state and rng state as `simulate_arm` hands it to the session engine, by (arm, user)."""
    seen: dict[tuple[str, int], dict] = {}
    real = arm_sessions.run_sessions

    def spy(plan, recommender, seats, **kwargs):
        for seat in seats:
            state = seat.user.get_state()
            seen[(plan.arm, seat.user_id)] = {"state": _comparable(state), "rng": seat.user.rng.bit_generator.state}
        return real(plan, recommender, seats, **kwargs)

    monkeypatch.setattr(arm_sessions, "run_sessions", spy)
    return seen


def _arm(name, position, recommender, twins):
    return simulate_arm("ab", name, position, recommender, twins, USERS, seed=SEED, pages=PAGES, slate_size=SLATE)


def test_every_arm_starts_each_user_from_the_same_snapshot(tiny_kit, recommenders, captured):
    twins = Twins(_warmed(tiny_kit), USERS, SEED)
    snapshot = {u: _comparable(twins.snapshots[u]) for u in USERS}
    assert all(snapshot[u]["had"] and snapshot[u]["simulated_watches"] and snapshot[u]["session"]["pages"] == 2 for u in USERS)
    runs = [_arm("pop", 0, recommenders["pop"], twins), _arm("random", 1, recommenders["random"], twins), _arm("pop2", 2, recommenders["pop"], twins)]
    # the sessions did change the users (so a twin that kept them would differ): some watched something new
    after = {u: _comparable(twins.users[u].get_state()) for u in USERS}
    assert all(sum(sum(p.reaction.n_watched for p in r.pages) for r in run.records) > 0 for run in runs)
    assert any(after[u] != snapshot[u] for u in USERS)
    for arm in ("pop", "random", "pop2"):
        for u in USERS:
            assert captured[(arm, u)]["state"] == snapshot[u], (arm, u)


def test_an_arm_sees_nothing_of_the_arms_before_it(tiny_kit, recommenders):
    """The second arm gives the same sessions whether or not the users met the first arm before (its watches,
    history and pages). Both arms show popular items, so a watch kept from the first would change the second."""
    pop = recommenders["pop"]
    solo = Twins(_warmed(tiny_kit), USERS, SEED)
    alone = _arm("pop-b", 1, pop, solo)
    twins = Twins(_warmed(tiny_kit), USERS, SEED)
    first = _arm("pop-a", 0, pop, twins)
    assert sum(sum(p.reaction.n_watched for p in r.pages) for r in first.records) > 0  # the first arm left watches behind
    after = _arm("pop-b", 1, pop, twins)
    a, b = records_to_frames(alone.records), records_to_frames(after.records)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    for u in USERS:  # and each user ends the second arm exactly as if it had been its only one
        assert _comparable(twins.users[u].get_state()) == _comparable(solo.users[u].get_state()), u


def test_each_arm_draws_its_own_luck_from_ab_session(tiny_kit, recommenders, captured):
    twins = Twins(_warmed(tiny_kit), USERS, SEED)
    pop = recommenders["pop"]
    one, two = _arm("pop", 0, pop, twins), _arm("pop-again", 1, pop, twins)
    for u in USERS:
        assert captured[("pop", u)]["rng"] == AB_SESSION.generator(SEED, arm=0, user=u).bit_generator.state
        assert captured[("pop-again", u)]["rng"] == AB_SESSION.generator(SEED, arm=1, user=u).bit_generator.state
    # two identical arms are twins with different luck: not the same sessions (a degenerate paired test otherwise) ...
    f1, f2 = records_to_frames(one.records)[0], records_to_frames(two.records)[0]
    assert not f1.drop(columns="arm").equals(f2.drop(columns="arm"))
    # ... while the same arm position replays exactly
    replay = _arm("pop", 0, pop, Twins(_warmed(tiny_kit), USERS, SEED))
    assert records_to_frames(replay.records)[0].equals(f1)
