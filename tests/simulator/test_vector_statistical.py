"""The vector env's array path (statistical users' sessions in arrays) gives exactly what the object path gives."""

from __future__ import annotations

import numpy as np
import pytest

from recarena.simulator.env import EnvConfig
from recarena.simulator.vector_env import RecArenaVectorEnv


def assert_same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert all(x == y for x, y in zip(a.tolist(), b.tolist())), where
    else:
        assert a == b, where


def actions_with_mistakes(rng: np.random.Generator, num_envs: int, slate: int, n_items: int) -> np.ndarray:
    """Random slates; some repeat an item, go out of range, or are all invalid (penalty mode drops those entries)."""
    actions = np.argsort(rng.random((num_envs, n_items)), 1)[:, :slate]
    actions[0, 1] = actions[0, 0]
    actions[1, -1] = n_items + 3
    actions[2, :] = -1
    return actions


@pytest.mark.parametrize(
    "config",
    [
        EnvConfig(slate_size=4, max_pages=3),
        EnvConfig(slate_size=5, max_pages=4, reward="ratings", history_length=6, invalid_slate="penalty"),
        EnvConfig(slate_size=3, max_pages=2, reward="satisfaction", interview=False, invalid_slate="penalty"),
        EnvConfig(slate_size=4, max_pages=5, interview=False, reaction_info=False),
    ],
    ids=["watches", "ratings-penalty", "satisfaction-penalty", "no-reaction-info"],
)
@pytest.mark.parametrize("kit_name", ["tiny_kit", "tiny_dynamic_kit"], ids=["static", "dynamic"])
def test_array_path_equals_the_user_objects(kit_name, config, request):
    tiny_kit = request.getfixturevalue(kit_name)
    n_items = tiny_kit.history.n_items
    arrays = RecArenaVectorEnv(tiny_kit, 12, config)
    objects = RecArenaVectorEnv(tiny_kit, 12, config, array_users=False)
    assert arrays.sessions is not None and objects.sessions is None
    assert_same(arrays.reset(seed=7), objects.reset(seed=7), "reset")
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(25):
        if config.invalid_slate == "penalty" and t % 3 == 0:
            actions = actions_with_mistakes(rng, 12, config.slate_size, n_items)
        else:
            actions = np.argsort(rng.random((12, n_items)), 1)[:, : config.slate_size]
        got, want = arrays.step(actions), objects.step(actions)
        assert_same(got[0], want[0], f"step {t} observation")
        for name, a, b in zip(("reward", "terminated", "truncated", "info"), got[1:], want[1:]):
            assert_same(a, b, f"step {t} {name}")
        ended += int((got[2] | got[3]).sum())
    assert ended > 12  # sessions ended and restarted along the way
    if config.reaction_info:
        assert "reactions" in got[4]
    else:
        assert "reactions" not in got[4]


def test_array_path_is_the_default_only_for_plain_statistical_users(tiny_kit):
    assert RecArenaVectorEnv(tiny_kit, 2).sessions is not None
    assert RecArenaVectorEnv(tiny_kit, 2, EnvConfig(text=True)).sessions is None
    assert RecArenaVectorEnv(tiny_kit, 2, make_user=tiny_kit.statistical_user).sessions is None
    with pytest.raises(ValueError, match="array_users=True needs"):
        RecArenaVectorEnv(tiny_kit, 2, make_user=tiny_kit.statistical_user, array_users=True)
