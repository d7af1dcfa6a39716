"""The statistical user: the contract, its rules, and its fidelity against held-out ml-100k users."""

from __future__ import annotations

import numpy as np
import pytest

from recarena.agents.checker import UserContractError, check_user
from recarena.agents.contract import SessionContext, SessionOverError
from recarena.agents.fidelity import FidelityConfig, fidelity_report


def pages(n_items: int, seed: int = 1, n: int = 6, size: int = 10) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.choice(n_items, size, replace=False).tolist() for _ in range(n)]


@pytest.mark.parametrize("text", [False, True])
def test_statistical_user_passes_the_contract(ml100k_kit, text):
    user = ml100k_kit.statistical_user(0, np.random.default_rng(0))
    check_user(user, pages(ml100k_kit.history.n_items), text=text)


def test_the_checker_catches_a_user_that_forgets_its_snapshot(ml100k_kit):
    user = ml100k_kit.statistical_user(0, np.random.default_rng(0))
    # Pages of items the user probably watches, so two independent draws almost surely differ.
    favourites = np.argsort(-user.watch_probabilities(list(range(ml100k_kit.history.n_items))))[:20].tolist()
    user.set_state = lambda state: None  # a broken restore
    with pytest.raises(UserContractError, match="same page must get the same reaction"):
        check_user(user, [favourites[:10], favourites[10:]])


def test_no_page_after_leaving_and_no_rewatching(ml100k_kit):
    kit = ml100k_kit
    user = kit.statistical_user(5, np.random.default_rng(3))
    had_before = sorted(kit.preferences.seen[5])[:10]
    user.start_session(SessionContext())
    reaction = user.view_page(had_before)
    assert reaction.n_watched == 0  # items from the real history are never watched again
    for page in pages(kit.history.n_items, seed=4, n=50):
        if reaction.leave:
            break
        reaction = user.view_page(page)
    assert reaction.leave, "a user must leave within 50 pages"
    with pytest.raises(SessionOverError):
        user.view_page(page)


def test_a_sci_fi_lover_watches_sci_fi_more_than_romance(ml100k_kit):
    kit = ml100k_kit
    history = kit.history
    genres = history.items["genres"]
    is_sci_fi = np.array(["Sci-Fi" in g and "Romance" not in g for g in genres])
    is_romance = np.array(["Romance" in g and "Sci-Fi" not in g for g in genres])
    frame = history.interactions
    share_sci_fi = frame.assign(s=is_sci_fi[frame["item"]]).groupby("user")["s"].mean()
    share_romance = frame.assign(r=is_romance[frame["item"]]).groupby("user")["r"].mean()
    # Sci-fi lovers: at least twice the usual share of sci-fi, at most half the usual romance.
    fans = share_sci_fi.index[(share_sci_fi >= 2 * is_sci_fi[frame["item"]].mean()) & (share_romance <= 0.5 * is_romance[frame["item"]].mean())]
    assert len(fans) >= 5
    popularity = np.bincount(frame["item"], minlength=history.n_items)
    wins = 0
    for fan in fans:
        user = kit.statistical_user(int(fan), np.random.default_rng(0))
        unseen = np.array([i not in kit.preferences.seen[fan] for i in range(history.n_items)])
        top = lambda mask: np.argsort(-np.where(mask & unseen, popularity, -1))[:30].tolist()  # noqa: E731
        wins += user.watch_probabilities(top(is_sci_fi)).mean() > user.watch_probabilities(top(is_romance)).mean()
    assert wins >= 0.9 * len(fans)


def test_interview_satisfaction_follows_the_session(ml100k_kit):
    kit = ml100k_kit
    user = kit.statistical_user(0, np.random.default_rng(0))
    assert kit.behaviour.satisfaction(10, [5, 5, 4]) > kit.behaviour.satisfaction(10, [])
    user.start_session(SessionContext(text=True))
    user.view_page(pages(kit.history.n_items)[0])
    interview = user.interview()
    assert 1 <= interview.satisfaction <= 10 and interview.liked


def test_one_satisfaction_formula_for_one_session_and_for_arrays(ml100k_kit):
    behaviour = ml100k_kit.behaviour
    shown, watched = np.array([30, 30, 30, 20, 10, 0]), np.array([0, 3, 9, 5, 10, 0])
    rating_sum = np.array([0, 6, 45, 20, 50, 0])
    scores = behaviour.satisfaction_scores(shown, watched, rating_sum)
    assert scores.dtype == np.int64 and scores.tolist() == [behaviour.satisfaction_of(*row) for row in zip(shown.tolist(), watched.tolist(), rating_sum.tolist())]
    assert scores[0] < scores[1] < scores[2] and scores[4] == 10 and scores[5] == scores[0]  # more and better watches: happier
    c = behaviour.config  # the formula of the module docstring, for a session with 3 watches of 10 rated 4, 4, 5
    expected = 1 + 9 / (1 + np.exp(-(c.satisfaction_rating * (13 / 3 - 3) + c.satisfaction_watch * (0.3 - c.satisfaction_watch_centre))))
    assert behaviour.satisfaction(10, [4, 4, 5]) == round(expected)


def test_the_checker_catches_a_batch_behaviour_that_disagrees_with_view_page(ml100k_kit):
    from recarena.agents.statistical import BehaviourConfig, StatisticalBehaviour

    kit = ml100k_kit
    user = kit.statistical_user(0, np.random.default_rng(0))
    never_watches = StatisticalBehaviour(kit.preferences, kit.behaviour.activity_tiers, BehaviourConfig(watch_shift=-50.0))
    user.batch_behaviour = lambda: never_watches  # claims its pages may be decided by rules it does not follow
    favourites = np.argsort(-user.watch_probabilities(list(range(kit.history.n_items))))[:20].tolist()
    with pytest.raises(UserContractError, match="batch_behaviour"):
        check_user(user, [favourites[:10], favourites[10:]])


def test_vectorised_decisions_match_the_probabilities(ml100k_kit):
    rng = np.random.default_rng(0)
    kit = ml100k_kit
    n = 4000
    users = rng.integers(0, kit.history.n_users, n)
    items = rng.integers(0, kit.history.n_items, (n, 10))
    outcome = kit.behaviour.decide(rng, users, items, np.zeros(n, int))
    assert abs(outcome.watched.mean() - outcome.watch_probability.mean()) < 0.01
    assert set(np.unique(outcome.ratings[outcome.watched])) <= {1, 2, 3, 4, 5}
    assert (outcome.ratings[~outcome.watched] == 0).all()
    # Lower positions are watched less: the first slot beats the last.
    assert outcome.watch_probability[:, 0].mean() > outcome.watch_probability[:, -1].mean()


def test_fidelity_beats_random_and_reports_baselines(ml100k_kit, ml100k_holdout):
    report = fidelity_report(
        lambda u: ml100k_kit.statistical_user(u, np.random.default_rng(u)),
        ml100k_holdout,
        FidelityConfig(max_users=150, progress=False),
    )
    one_to_one = report["discrimination"]["1:1"]
    assert one_to_one["simulated"]["f1"] > one_to_one["random_same_rate"]["f1"] + 0.15
    assert one_to_one["simulated"]["accuracy"] > 0.6
    assert one_to_one["simulated"]["auc"] > one_to_one["popularity_same_count"]["auc"] > 0.5
    rating = report["rating"]
    assert rating["simulated"]["rmse"] < rating["item_mean"]["rmse"] < rating["global_mean"]["rmse"]
    assert rating["wasserstein_simulated_vs_real"] < 0.2


def test_with_the_same_tuning_freedom_the_statistical_user_beats_the_popularity_threshold(ml100k_kit, ml100k_holdout):
    from recarena.simulator.data.splits import Split

    # Halve the held-out part (unseen by the kit) into validation and test.
    held_out = ml100k_holdout.test
    in_valid = np.random.default_rng(0).random(len(held_out)) < 0.5
    split = Split(ml100k_holdout.dataset, ml100k_holdout.train, held_out[in_valid], held_out[~in_valid], "halves")
    report = fidelity_report(
        lambda u: ml100k_kit.statistical_user(u, np.random.default_rng(u)), split, FidelityConfig(max_users=200, ratios=(1, 9), progress=False)
    )
    for ratio in ("1:1", "1:9"):
        figures = report["discrimination"][ratio]
        assert figures["simulated_tuned_threshold"]["f1"] > figures["popularity_threshold"]["f1"]


def test_a_row_of_page_uniforms_decides_as_the_users_own_three_draws(ml100k_kit):
    """The batched path fills one row per user with ``rng.random(2k + 1)``; alone, a user draws the same
    numbers in three calls (watches, ratings, leaving). Both must give the same page, user by user."""
    from recarena.agents.statistical import page_uniforms

    kit, n, k = ml100k_kit, 300, 6
    rng = np.random.default_rng(2)
    users = rng.integers(0, kit.history.n_users, n)
    popular = np.argsort(-np.bincount(kit.history.interactions["item"], minlength=kit.history.n_items))[:40]
    items = np.stack([rng.choice(popular, k, replace=False) for _ in range(n)])
    pages = rng.integers(0, 4, n)
    batch = kit.behaviour.decide(None, users, items, pages, uniforms=page_uniforms([np.random.default_rng([5, r]) for r in range(n)], k))
    alone = [kit.behaviour.decide(np.random.default_rng([5, r]), users[r : r + 1], items[r : r + 1], pages[r : r + 1]) for r in range(n)]
    assert (batch.watched == np.concatenate([a.watched for a in alone])).all()
    assert (batch.ratings == np.concatenate([a.ratings for a in alone])).all()
    assert (batch.leave == np.concatenate([a.leave for a in alone])).all()
    # not a vacuous match: watches, several ratings, leaving and staying all occur
    assert batch.watched.any() and len(np.unique(batch.ratings[batch.watched])) >= 3 and batch.leave.any() and (~batch.leave).any()
