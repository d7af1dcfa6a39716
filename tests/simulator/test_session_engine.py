"""The session engine: one page loop for the A/B arms and the population rounds, with either slate policy."""

from __future__ import annotations

import numpy as np
import pytest

from recarena.recommenders import build_recommender
from recarena.simulator.arm_sessions import Twins, simulate_arm
from recarena.simulator.data.streams import POPULATION_SLOTS
from recarena.simulator.events import EventStore
from recarena.simulator.exploration import SlatePolicy, genre_unit_vectors
from recarena.simulator.population_shards import RoundWorld, round_sessions
from recarena.simulator.session_engine import Seat, SessionPlan, run_sessions

from .conftest import no_leaving

@pytest.fixture(scope="module")
def pop(tiny_kit):
    return build_recommender("pop").fit(tiny_kit.history)


@pytest.fixture(scope="module")
def USERS(pop):
    """20 users with a catalogue left to show them (some of the tiny world's users had every item)."""
    return [u for u in range(pop.n_users) if len(pop.known_items([u])[0]) <= pop.n_items - 30][:20]


def reactions(records):
    """Per user, every page as (items, watched, ratings, leave), and the interview's satisfaction."""
    return {
        r.user: ([([x.item for x in p.reaction.items], [x.watched for x in p.reaction.items], [x.rating for x in p.reaction.items],
                   p.reaction.leave) for p in r.pages], r.interview.satisfaction if r.interview else None)
        for r in records
    }  # fmt: skip


def seats(make_user, users, seed):
    return [Seat(u, make_user(u, np.random.default_rng([seed, u])), np.random.default_rng([seed, u, 1])) for u in users]


def test_the_plain_policy_shows_the_recommenders_top_items_never_a_known_or_shown_one(tiny_kit, pop, USERS):
    plan = SessionPlan(run="test", arm="pop", pages=3, slate_size=4, batch_size=7)
    records = run_sessions(plan, pop, seats(no_leaving(tiny_kit), USERS, 0))
    assert sorted(r.user for r in records) == USERS
    for record in records:
        assert (record.run, record.arm, record.round, len(record.pages)) == ("test", "pop", 0, 3)
        shown = [x.item for page in record.pages for x in page.reaction.items]
        assert len(set(shown)) == 12 and not set(shown) & set(pop.known_items([record.user])[0].tolist())
        scores = pop.score(np.array([record.user]))[0].numpy()
        pages = [scores[[x.item for x in page.reaction.items]] for page in record.pages]
        assert all(a.min() >= b.max() for a, b in zip(pages, pages[1:]))  # page after page, the next best items
        assert record.interview is not None and record.user_state is None  # interviewed; no snapshot without a store


def test_the_ab_policy_explores_whole_pages_from_the_pool_reproducibly(tiny_kit, pop, USERS):
    policy = SlatePolicy(page_epsilon=1.0, pool=12)
    plan = SessionPlan(run="test", arm="pop", pages=2, slate_size=4, policy=policy)
    records = run_sessions(plan, pop, seats(no_leaving(tiny_kit), USERS, 0))
    again = run_sessions(plan, pop, seats(no_leaving(tiny_kit), USERS, 0))
    assert reactions(records) == reactions(again)
    explored = 0
    for record in records:
        known = [pop.known_items([record.user])[0]]
        top = pop.recommend(np.array([record.user]), 12, exclude=known).items[0]
        first = [x.item for x in record.pages[0].reaction.items]
        assert set(first) <= set(top.tolist())  # drawn from the top `pool`
        explored += first != top[:4].tolist()
    assert explored > len(records) // 2  # in random order, rarely the top slate itself
    plain = run_sessions(SessionPlan(run="test", arm="pop", pages=2, slate_size=4), pop, seats(no_leaving(tiny_kit), USERS, 0))
    assert reactions(plain) != reactions(records)


def test_the_population_policy_reranks_explores_slots_and_never_shows_earlier_watches(tiny_kit, pop, USERS):
    history = tiny_kit.history
    policy = SlatePolicy(epsilon=0.3, mmr=0.5, pool=15)
    plan = SessionPlan(run="run", arm="main", pages=3, slate_size=5, policy=policy, round=2, sim_time=777, exclude_watched=True,
                       n_items=history.n_items, genre_vectors=genre_unit_vectors(history.genre_matrix()))  # fmt: skip
    watched = {u: set(pop.recommend(np.array([u]), 3).items[0].tolist()) for u in USERS}  # the top items, watched "yesterday"
    chairs = [Seat(u, tiny_kit.statistical_user(u, np.random.default_rng(u)), POPULATION_SLOTS.generator(0, round=2, user=u), session=4,
                   watched=watched[u]) for u in USERS]  # fmt: skip
    records = run_sessions(plan, pop, chairs, keep_state=True)
    for record in records:
        assert (record.round, record.session) == (2, 4) and record.user_state is not None
        assert all(page.sim_time == 777 for page in record.pages)
        shown = [x.item for page in record.pages for x in page.reaction.items]
        assert not set(shown) & watched[record.user] and len(set(shown)) == len(shown)
        assert not set(shown) & set(pop.known_items([record.user])[0].tolist())
    with pytest.raises(ValueError, match="genre_vectors"):
        run_sessions(SessionPlan(run="run", arm="main", pages=1, slate_size=5, policy=SlatePolicy(mmr=0.5)), pop, chairs)


def test_an_ab_arm_and_a_population_round_of_the_same_users_give_the_same_sessions(tiny_kit, pop, USERS):
    """Both callers seat users through the one engine: with the same users, policy and seeds (arm
    position 1's session stream is round 1's), the sessions are the same."""
    policy = SlatePolicy()
    arm = simulate_arm("run", "main", 1, pop, Twins(tiny_kit.statistical_user, USERS, 5), USERS, seed=5, pages=4, slate_size=5,
                       policy=policy, batch_size=8)  # fmt: skip
    plan = SessionPlan(run="run", arm="main", pages=4, slate_size=5, policy=policy, round=1, batch_size=8)
    users = [tiny_kit.statistical_user(u, np.random.default_rng(0)) for u in USERS]
    population = round_sessions(RoundWorld(pop, plan, 5), users, USERS, [0] * len(USERS), [set() for _ in USERS])
    assert [r.user for r in population] == USERS  # user order
    assert reactions(arm.records) == reactions(population) and len(arm.records) == len(USERS)


def test_with_a_store_sessions_are_committed_and_a_rerun_skips_them(tiny_kit, pop, tmp_path, USERS):
    class Bar:
        count = 0

        def update(self, n):
            self.count += n

    plan = SessionPlan(run="ab", arm="pop", pages=2, slate_size=4)
    with EventStore(tmp_path / "events.sqlite") as store:
        first = run_sessions(plan, pop, seats(tiny_kit.statistical_user, USERS[:5], 0), store=store)
        bar = Bar()
        second = run_sessions(plan, pop, seats(tiny_kit.statistical_user, USERS, 0), store=store, progress=bar)
        assert store.completed_sessions("ab", "pop") == {(0, u) for u in USERS}
    assert all(r.user_state is not None for r in first)  # stored with the user's snapshot
    assert sorted(r.user for r in second) == USERS[5:] and bar.count == len(USERS)


def test_the_slate_excludes_what_the_recommender_says_the_user_had(tiny_kit, pop, USERS):
    """The engine asks the recommender's contract (`known_items`), not its private histories."""

    class KnowsMore(type(pop)):
        def known_items(self, users):
            return [np.append(known, self.recommend(np.array([u]), 2).items[0]) for u, known in zip(users, super().known_items(users))]

    knows_more = KnowsMore()
    knows_more.__dict__.update(pop.__dict__)
    records = run_sessions(SessionPlan(run="test", arm="pop", pages=1, slate_size=4), knows_more, seats(no_leaving(tiny_kit), USERS, 0))
    for record in records:
        best_two = pop.recommend(np.array([record.user]), 2).items[0].tolist()
        assert not set(best_two) & {x.item for x in record.pages[0].reaction.items}
