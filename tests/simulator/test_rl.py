"""RL in the arena: the scoring wrapper passes Gymnasium's and Stable-Baselines3's checkers, its zero action is the base
recommender's own slate, its slate is the top-k of its scores, PPO runs end to end on the batched vector env, and
everything is seeded."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from recarena.recommenders import build_recommender
from recarena.simulator.env import EnvConfig, RecArenaEnv
from recarena.simulator.exploration import SlatePolicy, build_slates
from recarena.simulator.rl import FEATURES, OBSERVATIONS, CandidatePool, CandidateScorer, ScoringConfig, SlateScoringEnv, session_watches
from recarena.simulator.vector_env import RecArenaVectorEnv

CONFIG = EnvConfig(slate_size=4, max_pages=3, reaction_info=False, interview=False)
SCORING = ScoringConfig(candidates=20, embedding_dim=8)


@pytest.fixture(scope="module")
def pool(tiny_kit):
    """An ItemKNN fitted on the users' own history (fits in milliseconds), as the pool of its candidates."""
    return CandidatePool(tiny_kit.history, build_recommender("itemknn", {"seed": 0, "progress": False}).fit(tiny_kit.history), SCORING)


def scoring_env(kit, pool) -> SlateScoringEnv:
    return SlateScoringEnv(RecArenaEnv(kit, CONFIG), pool)


def test_gymnasium_check_env_passes_without_warnings(tiny_kit, pool):
    env = scoring_env(tiny_kit, pool)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    assert env.observation_space.shape == (len(OBSERVATIONS),) and env.action_space.shape == (len(FEATURES),)


@pytest.mark.requires("rl")
def test_stable_baselines3_check_env_passes_without_warnings(tiny_kit, pool):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(scoring_env(tiny_kit, pool), warn=True)
    assert [str(w.message) for w in caught] == []


def test_the_zero_action_shows_the_base_recommenders_plain_slates(tiny_kit, pool):
    # The session engine's plain policy: the recommender's top-k, never a known item nor one shown earlier in the session.
    env = scoring_env(tiny_kit, pool)
    for user in (3, 5, 17, 42):  # users for whom the base ranks enough items (0 and 25 have had 58 of the 60)
        env.reset(seed=user, options={"user": user})
        shown: list[int] = []
        while True:
            _, _, terminated, truncated, info = env.step(np.zeros(len(FEATURES), np.float32))
            expected = build_slates(pool.recommender, SlatePolicy(), [user], [shown], CONFIG.slate_size, [np.random.default_rng(0)])[0]
            assert info["slate"].tolist() == expected
            shown += expected
            if terminated or truncated:
                break


def test_the_slate_is_the_top_k_of_the_scores_and_never_repeats_in_a_session(tiny_kit, pool):
    env = scoring_env(tiny_kit, pool)
    scorer = env.scorer
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    shown: set[int] = set()
    for _ in range(CONFIG.max_pages):
        action = rng.uniform(-1, 1, len(FEATURES)).astype(np.float32)
        scores = scorer.scores([0], action[None])[0]
        best = scorer.candidates[0][np.argsort(-scores, kind="stable")[: CONFIG.slate_size]]
        assert np.all(np.diff(np.sort(scores[np.isfinite(scores)])) >= 0)
        _, _, terminated, truncated, info = env.step(action)
        assert info["slate"].tolist() == best.tolist()
        assert not shown & set(info["slate"].tolist())
        shown |= set(info["slate"].tolist())
        if terminated or truncated:
            break


def test_recent_similarity_follows_the_sessions_watches(tiny_kit, pool):
    # The one feature that moves within a session: it reads the observation's history, which gains the watches.
    scorer = CandidateScorer(pool, CONFIG, rows=1)
    scorer.start([0], [7])
    history = np.full((1, CONFIG.history_length), -1, np.int64)
    history[0, -3:] = tiny_kit.history.user_histories()[7][-3:]
    obs = {"history": history, "page": np.array([1]), "last_watched": np.zeros((1, 4), np.int64), "last_ratings": np.zeros((1, 4), np.int64)}
    scorer.observe([0], obs)
    before = scorer.features([0])[0, :, -1].copy()
    history[0, :-1], history[0, -1] = history[0, 1:], scorer.candidates[0, -1]  # the user watched the last candidate
    scorer.observe([0], obs)
    after = scorer.features([0])[0, :, -1]
    assert after[-1] > before[-1]  # the item just watched comes closer to the recent items


def test_too_few_candidates_for_the_pages_is_refused(tiny_kit, pool):
    with pytest.raises(ValueError, match="candidates"):
        CandidateScorer(CandidatePool(tiny_kit.history, pool.recommender, ScoringConfig(candidates=11)), CONFIG)


def test_session_watches_are_paired_and_seeded(tiny_kit, pool):
    users = list(range(30))
    first = session_watches(tiny_kit, pool, CONFIG, users, seed=4)
    assert first.tolist() == session_watches(tiny_kit, pool, CONFIG, users, seed=4).tolist()
    assert first.shape == (30,) and first.sum() > 0
    reverse = session_watches(tiny_kit, pool, CONFIG, users, seed=4, policy=lambda o: np.tile([-1.0, 0, 0, 0, 0], (len(o), 1)))
    assert reverse.sum() < first.sum()  # the base's order turned upside down loses watches


@pytest.mark.requires("rl")
def test_the_sb3_vector_env_restarts_sessions_in_the_same_step(tiny_kit, pool):
    from recarena.simulator.sb3_vec_env import ScoringVecEnv

    venv = ScoringVecEnv(RecArenaVectorEnv(tiny_kit, 8, CONFIG), pool)
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (8, len(OBSERVATIONS)) and obs.dtype == np.float32 and (obs[:, 0] == 0).all()
    ended = 0
    for _ in range(CONFIG.max_pages):
        obs, rewards, dones, infos = venv.step(np.zeros((8, len(FEATURES)), np.float32))
        assert rewards.dtype == np.float32 and len(infos) == 8
        for i in np.flatnonzero(dones).tolist():
            ended += 1
            assert obs[i, 0] == 0  # a new session's first page
            assert infos[i]["terminal_observation"][0] > 0 and "TimeLimit.truncated" in infos[i]
    assert ended >= 8  # every session ends by max_pages


@pytest.mark.requires("rl")
def test_ppo_learns_a_few_hundred_steps_end_to_end_and_is_seeded(tiny_kit, pool):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from recarena.simulator.sb3_vec_env import ScoringVecEnv

    def train(seed: int) -> PPO:
        venv = VecMonitor(ScoringVecEnv(RecArenaVectorEnv(tiny_kit, 16, CONFIG), pool))
        model = PPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=2, seed=seed, device="cpu", policy_kwargs={"net_arch": [16]})
        return model.learn(256)

    with torch.random.fork_rng():
        first, again = train(0), train(0)
    assert first.num_timesteps >= 256 and len(first.ep_info_buffer) > 0
    for a, b in zip(first.policy.parameters(), again.policy.parameters()):
        assert torch.equal(a, b)
    watches = session_watches(tiny_kit, pool, CONFIG, list(range(20)), seed=1,
                              policy=lambda o: first.predict(o, deterministic=True)[0])  # fmt: skip
    assert watches.shape == (20,) and np.isfinite(watches).all()
