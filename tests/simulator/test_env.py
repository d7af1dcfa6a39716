"""The Gymnasium environment: Gymnasium's own checker, slate validation, rewards, truncation, seeding, vector form."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from recarena.simulator.env import EnvConfig, InvalidSlateError, RecArenaEnv, SlateSpace
from recarena.simulator.sessions import show_pages
from recarena.simulator.vector_env import RecArenaVectorEnv

from .conftest import no_leaving


def run_episode(env, seed, policy=None, user=None):
    obs, info = env.reset(seed=seed, options={"user": user} if user is not None else None)
    steps = []
    while True:
        action = policy(obs) if policy else env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            return steps


def test_check_env_passes_without_warnings(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=5, max_pages=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)  # no render modes; a bare env has no spec to test them with
    assert [str(w.message) for w in caught] == []


def test_registered_movielens_env_passes_check_env(ml100k_full_kit):
    spec = gymnasium.spec("recarena/MovieLens100K-v0")
    assert spec.nondeterministic is False and spec.vector_entry_point is not None
    assert gymnasium.spec("recarena/MovieLens100K-LLM-v0").nondeterministic is True
    env = gymnasium.make("recarena/MovieLens100K-v0", slate_size=8, max_pages=3)
    assert env.unwrapped.n_items == 1682 and env.unwrapped.n_users == 943
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    with pytest.raises(TypeError, match="unknown argument"):
        gymnasium.make("recarena/MovieLens100K-v0", slate=3)


def test_reset_picks_the_user_and_observation_fits_the_space(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=4, max_pages=3, history_length=6))
    obs, info = env.reset(seed=0, options={"user": 7})
    assert obs["user"] == 7 and info["user"] == 7 and obs["page"] == 0
    assert env.observation_space.contains(obs)
    assert env.tracker.user.rng is env.np_random  # the env's one RNG is the user's
    real = env.histories[7][-6:]
    assert obs["history"][6 - len(real) :].tolist() == real.tolist()
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"user": 10_000})


def test_same_seed_same_episode_different_seed_differs(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=5, max_pages=6, reward="ratings"))
    slate = lambda obs: (np.arange(5) + 5 * obs["page"]) % env.n_items  # noqa: E731
    a = [(r, te, tr, i["reactions"]) for r, te, tr, i in run_episode(env, 3, slate)]
    b = [(r, te, tr, i["reactions"]) for r, te, tr, i in run_episode(env, 3, slate)]
    assert a == b
    others = [[(r, i["reactions"]) for r, _, _, i in run_episode(env, s, slate)] for s in range(4, 10)]
    assert any(o != [(r, x) for r, _, _, x in a] for o in others)


def test_invalid_slates_error_by_default(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=3))
    env.reset(seed=0)
    with pytest.raises(InvalidSlateError, match=r"duplicate or out-of-range item\(s\) \[1\]"):
        env.step(np.array([1, 2, 1]))
    with pytest.raises(InvalidSlateError, match="out-of-range"):
        env.step(np.array([0, 1, env.n_items]))
    with pytest.raises(InvalidSlateError, match="expected 3"):
        env.step(np.array([0, 1]))


def test_invalid_slates_penalised_when_configured(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=3, invalid_slate="penalty", invalid_penalty=-2.5))
    env.reset(seed=0, options={"user": 1})
    obs, reward, _, _, info = env.step(np.array([4, 4, -1]))
    assert info["invalid"] == 2 and len(info["reactions"]) == 1 and info["reactions"][0]["item"] == 4
    assert reward == pytest.approx(-5.0 + obs["last_watched"].sum())
    assert obs["last_items"].tolist() == [4, -1, -1]


def test_space_samples_distinct_items_and_rejects_duplicates():
    space = SlateSpace(12, 10, seed=0)
    for _ in range(50):
        s = space.sample()
        assert len(set(s.tolist())) == 10 and space.contains(s)
    assert not space.contains(np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]))
    batch = SlateSpace(12, 10, batch=30, seed=0).sample()
    assert batch.shape == (30, 10) and all(len(set(row)) == 10 for row in batch.tolist())


def test_time_limit_is_truncation_never_termination(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=4, max_pages=3), make_user=no_leaving(tiny_kit))
    steps = run_episode(env, 0)
    assert len(steps) == 3 and steps[-1][2] is True and steps[-1][1] is False
    assert all(not te and not tr for _, te, tr, _ in steps[:-1])
    leavers = RecArenaEnv(tiny_kit, EnvConfig(slate_size=4, max_pages=50))
    for seed in range(10):
        last = run_episode(leavers, seed)[-1]
        assert last[1] is True and last[2] is False  # the statistical user leaves long before 50 pages


def test_rewards_follow_the_configured_kind(tiny_kit):
    for kind in ("watches", "ratings", "satisfaction"):
        env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=6, max_pages=4, reward=kind))
        for seed in range(3):
            for reward, te, tr, info in run_episode(env, seed):
                watched = [r for r in info["reactions"] if r["watched"]]
                expected = {
                    "watches": len(watched),
                    "ratings": sum(r["rating"] for r in watched),
                    "satisfaction": info["interview"]["satisfaction"] if (te or tr) else 0,
                }[kind]
                assert reward == expected
    with pytest.raises(ValueError, match="reward"):
        RecArenaEnv(tiny_kit, EnvConfig(reward="clicks"))  # type: ignore[arg-type]


def test_step_after_the_end_is_an_error(tiny_kit):
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=4, max_pages=1))
    run_episode(env, 0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_batched_pages_equal_one_user_at_a_time(tiny_kit):
    from recarena.agents.contract import SessionContext

    rng = np.random.default_rng(5)
    ids = list(range(0, 40, 2))
    slates = [rng.choice(tiny_kit.history.n_items, 6, replace=False).tolist() for _ in ids]
    batch = [tiny_kit.statistical_user(u, np.random.default_rng([9, u])) for u in ids]
    alone = [tiny_kit.statistical_user(u, np.random.default_rng([9, u])) for u in ids]
    for user in batch + alone:
        user.start_session(SessionContext())
    for _ in range(3):
        live = [k for k, u in enumerate(batch) if u.session.active]
        got = show_pages([batch[k] for k in live], [slates[k] for k in live])
        want = [alone[k].view_page(slates[k]) for k in live]
        assert got == want
    assert [u.get_state()["had"] for u in batch] == [u.get_state()["had"] for u in alone]


def test_vector_env_steps_many_users_and_autoresets(tiny_kit):
    envs = RecArenaVectorEnv(tiny_kit, 16, EnvConfig(slate_size=4, max_pages=3))
    obs, info = envs.reset(seed=0, options={"users": list(range(16))})
    assert obs["user"].tolist() == list(range(16)) and envs.observation_space.contains(obs)
    finished = np.zeros(16, bool)
    seen_autoreset = False
    for _ in range(8):
        actions = envs.action_space.sample()
        obs, rewards, terminated, truncated, info = envs.step(actions)
        assert envs.observation_space.contains(obs) and rewards.shape == (16,)
        assert not (terminated & truncated).any()
        # next-step autoreset: an env that finished last step restarts now with reward 0, page 0
        assert (obs["page"][finished] == 0).all() and (rewards[finished] == 0).all()
        seen_autoreset |= finished.any()
        finished = terminated | truncated
    assert seen_autoreset
    again = RecArenaVectorEnv(tiny_kit, 16, EnvConfig(slate_size=4, max_pages=3))
    a1, _ = again.reset(seed=0, options={"users": list(range(16))})
    step = np.tile(np.arange(4), (16, 1))
    assert envs.reset(seed=1)[0]["user"].tolist() == again.reset(seed=1)[0]["user"].tolist()
    r1, r2 = envs.step(step)[1], again.step(step)[1]
    assert r1.tolist() == r2.tolist()
    before = envs.pages.copy()
    with pytest.raises(InvalidSlateError, match=r"environment \d+: slate holds 3 duplicate"):
        envs.step(np.zeros((16, 4), np.int64))
    assert envs.pages.tolist() == before.tolist()  # nothing was shown


def test_registered_vector_entry_point(ml100k_full_kit):
    envs = gymnasium.make_vec("recarena/MovieLens100K-v0", num_envs=8, vectorization_mode="vector_entry_point", slate_size=5)
    obs, _ = envs.reset(seed=0)
    assert obs["history"].shape == (8, 20)
    obs, rewards, *_ = envs.step(envs.action_space.sample())
    assert rewards.shape == (8,)


def test_one_episode_with_the_embedded_llm_replays_from_a_warm_cache(tiny_kit, tmp_path):
    from recarena.agents.llm import LLMConfig, make_llm

    llm = make_llm("embedded", LLMConfig(cache_path=tmp_path / "llm.sqlite", progress=False))
    env = RecArenaEnv(tiny_kit, EnvConfig(slate_size=3, max_pages=2), make_user=lambda u, rng: tiny_kit.llm_user(u, rng, llm))
    slate = lambda obs: np.array([0, 1, 2]) + 3 * obs["page"]  # noqa: E731
    first = run_episode(env, 0, slate, user=4)
    cold = llm.accountant.total()
    assert cold.cache_misses > 0 and cold.fallbacks == 0
    second = run_episode(env, 0, slate, user=4)
    warm = llm.accountant.total()
    assert warm.cache_misses == cold.cache_misses and warm.cache_hits > cold.cache_hits  # every answer came from the cache
    assert first == second and "interview" in first[-1][3]


def test_vector_env_steps_like_single_envs_sharing_its_generators(tiny_kit):
    """Sub-environment i is a `RecArenaEnv` whose np_random is the seed's i-th child: observations,
    rewards, ends, reactions and autoresets agree step by step (invalid entries and text included)."""
    config = EnvConfig(slate_size=4, max_pages=3, invalid_slate="penalty", text=True)
    n = 6
    envs = RecArenaVectorEnv(tiny_kit, n, config)
    obs, _ = envs.reset(seed=4)
    singles = []
    for child in np.random.SeedSequence(4).spawn(n):
        env = RecArenaEnv(tiny_kit, config)
        env.np_random = np.random.default_rng(child)
        singles.append(env)
    expected = [env.reset()[0] for env in singles]
    done = [False] * n
    rng = np.random.default_rng(0)
    for t in range(12):
        for i, o in enumerate(expected):
            for key, value in o.items():
                assert np.array_equal(obs[key][i], value), (t, i, key)
        actions = np.stack([rng.choice(tiny_kit.history.n_items, 4, replace=False) for _ in range(n)])
        if t % 3 == 0:
            actions[1, 2] = actions[1, 0]  # a duplicate: dropped and penalised
        obs, rewards, terminated, truncated, info = envs.step(actions)
        for i, env in enumerate(singles):
            if done[i]:  # next-step autoreset: the action is ignored, reward 0
                expected[i], reward, ended, cut = env.reset()[0], 0.0, False, False
            else:
                expected[i], reward, ended, cut, single_info = env.step(actions[i])
                assert info["reactions"][i] == single_info["reactions"] and info["feeling"][i] == single_info["feeling"]
                assert info["invalid"][i] == single_info["invalid"]
            assert (rewards[i], terminated[i], truncated[i]) == (reward, ended, cut), (t, i)
            done[i] = ended or cut
    assert sum(done) < n and any(e.tracker.page for e in singles)


def test_vector_infos_are_laid_out_as_gymnasium_lays_them_out(tiny_kit):
    from recarena.simulator.vector_env import VectorInfos

    envs = RecArenaVectorEnv(tiny_kit, 4, EnvConfig(slate_size=4))
    per_env = [
        (0, {"user": 3, "page": 1, "reactions": [{"item": 1}], "feeling": "bored", "interview": {"satisfaction": 5, "liked": "x"}}),
        (2, {"user": 7, "page": 2, "reactions": [], "feeling": "pleased", "score": 0.5}),
        (3, {"user": 9}),
    ]
    reference: dict = {}
    ours = VectorInfos(4)
    for i, info in per_env:
        reference = envs._add_info(reference, info, i)
        ours.add(i, info)
    built = ours.build()

    def same(a, b):
        assert isinstance(a, dict) == isinstance(b, dict) and (not isinstance(a, dict) or a.keys() == b.keys())
        if isinstance(a, dict):
            return all(same(a[k], b[k]) for k in a)
        assert a.dtype == b.dtype and a.shape == b.shape and list(a) == list(b)
        return True

    assert same(reference, built)
