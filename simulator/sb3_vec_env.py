"""`ScoringVecEnv`: the scoring env (rl.py) over a `RecArenaVectorEnv`, as a Stable-Baselines3 vector env.

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    pool = CandidatePool(kit.history, base_recommender)           # the base's candidates and their features
    vec_env = VecMonitor(ScoringVecEnv(RecArenaVectorEnv(kit, 64, EnvConfig(reaction_info=False)), pool))
    PPO("MlpPolicy", vec_env, seed=0).learn(20_000)

Stable-Baselines3 could run `SlateScoringEnv` copies in its ``DummyVecEnv``, one Python env per user; this
adapter instead steps every session in one batched call of the array path (statistical users), with the
candidates' features for all rows at once. It follows SB3's vector-env contract: a finished session is
restarted in the same step (``RecArenaVectorEnv.restart``; Gymnasium's next-step autoreset would waste an
action), its last observation goes into ``info["terminal_observation"]``, and ``info["TimeLimit.truncated"]``
marks a session cut at ``max_pages`` (PPO bootstraps its value there, not where the user left).

Seeding: ``seed(s)`` (which SB3 calls with the model's seed) makes the next `reset` reseed the wrapped env
with `s`; its sub-environments then draw from the children of `s`, as `RecArenaVectorEnv` says.

Needs the ``rl`` extra (``pip install 'recarena[rl]'``: stable-baselines3).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .rl import CandidatePool, CandidateScorer, scoring_spaces
from .vector_env import RecArenaVectorEnv


class ScoringVecEnv(VecEnv):
    """Every sub-environment of `env` as a scoring env (see the module docstring)."""

    render_mode = None

    def __init__(self, env: RecArenaVectorEnv, pool: CandidatePool):
        self.env = env
        self.scorer = CandidateScorer(pool, env.config, rows=env.num_envs)
        self.rows = np.arange(env.num_envs)
        self._actions: np.ndarray | None = None
        observation_space, action_space = scoring_spaces()
        super().__init__(env.num_envs, observation_space, action_space)

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        obs, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        self.scorer.start(self.rows, obs["user"])
        return self.scorer.observe(self.rows, obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        slates = self.scorer.slates(self.rows, self._actions)
        self._actions = None
        obs, rewards, terminated, truncated, _ = self.env.step(slates)
        observation = self.scorer.observe(self.rows, obs)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if len(ended):
            for i in ended.tolist():
                infos[i]["terminal_observation"] = observation[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            obs = self.env.restart(ended)
            self.scorer.start(ended, obs["user"][ended])
            observation[ended] = self.scorer.observe(ended, {key: value[ended] for key, value in obs.items()})
        return observation, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    # The rest of SB3's contract: attributes and methods of the (one, batched) wrapped env, per sub-environment.
    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name) if attr_name == "render_mode" else getattr(self.env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
