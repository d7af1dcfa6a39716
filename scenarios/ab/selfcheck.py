"""The A/A self-check of `recarena ab --aa`: the control against itself many times.

    result = run_aa(ABConfig(arms="pop", aa=True, users=200), runs=250)

With no difference between the arms, the share of runs with p < alpha must sit near alpha; with a
planted difference (`planted_watch_shift`, statistical users only) that share is the test's power
(tests/scenarios/ab/test_selfchecks.py, benchmarks/aa_power.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.agents.kit import UserKit
from recarena.agents.statistical import StatisticalBehaviour
from recarena.simulator.arm_sessions import Twins, fast_statistical_sessions, records_to_frames, simulate_arm
from recarena.simulator.data.streams import AA_ARM

from recarena.scenarios.ab import metrics as am
from recarena.scenarios.ab.metrics import finite_mean
from recarena.scenarios.ab.scenario import RUN, ABConfig, ABConfigError, assign_users
from recarena.scenarios.ab.world import World, build_world
from recarena.scenarios.comparisons import p_value_of
from recarena.scenarios.contract import capped


def run_aa(config: ABConfig, world: World | None = None, runs: int | None = None, planted_watch_shift: float = 0.0) -> dict[str, Any]:
    """The A/A self-check: the control against itself `runs` times with fresh users and draws each time.

    Sessions stay in memory (no event store); returns the p-values per metric, the share of runs
    with p < alpha (it should sit near alpha), and per metric each run's difference of the arms'
    means (second arm minus first) and their mean (near 0).

    `planted_watch_shift` (the power check, statistical users only): the second arm's users get this
    added to every watch logit (``BehaviourConfig.watch_shift``), so the arms truly differ; the
    share of runs with p < alpha is then the test's power against that effect, and
    ``mean_difference`` its size on each metric (tests/scenarios/ab/test_selfchecks.py,
    benchmarks/aa_power.py)."""
    config.validate()
    runs = config.aa_runs if runs is None else runs
    world = world or build_world(config.world_spec())
    capped("users", config.users, world.dataset.n_users, f"dataset {world.dataset.name!r}")
    if planted_watch_shift and config.user_kind != "statistical":
        raise ABConfigError(f"planted_watch_shift: a planted effect needs statistical users, got user_kind {config.user_kind!r}")
    kits = [world.kit, _planted(world.kit, planted_watch_shift) if planted_watch_shift else world.kit]
    model = config.arm_models()[0]
    recommender = world.recommenders[model]
    make_user = world.user_factory(config.user_kind)
    information = am.self_information(world.split.train_dataset())
    metrics = ("watch_rate", "mean_rating", "pages", "satisfaction")
    p_values: dict[str, list[float]] = {m: [] for m in metrics}
    differences: dict[str, list[float]] = {m: [] for m in metrics}
    for r in tqdm(range(runs), desc="A/A runs", disable=not config.progress):
        seed = config.seed * 1_000_003 + r
        users, arms = assign_users(config.assignment(), world.dataset.n_users, seed)
        per_user = {}
        if config.user_kind == "statistical":  # vectorised, no user objects: 200 runs in seconds
            for position, (label, arm_users) in enumerate(arms.items()):
                per_user[label] = fast_statistical_sessions(kits[position], recommender, arm_users, pages=config.pages,
                                                            slate_size=config.slate_size,
                                                            rng=AA_ARM.generator(seed, arm=position))  # fmt: skip
        twins = Twins(make_user, users, seed) if not per_user else None
        for position, (label, arm_users) in enumerate(arms.items() if twins is not None else []):
            arm_run = simulate_arm(RUN, label, position, recommender, twins, arm_users, seed=seed, pages=config.pages,
                                   slate_size=config.slate_size, llm=world.llm, threads=config.threads)  # fmt: skip
            imp, ses = records_to_frames(arm_run.records)
            per_user[label] = am.user_metrics(imp, ses, arm_users, world.dataset, information)
        a, b = per_user.values()
        for m in metrics:
            p_values[m].append(p_value_of(a[m].to_numpy(), b[m].to_numpy(), config.design, config.test))
            mean_a, mean_b = finite_mean(a[m]), finite_mean(b[m])
            differences[m].append(mean_b - mean_a if mean_a is not None and mean_b is not None else float("nan"))
    rates = {m: float(np.mean(np.asarray(p) < config.alpha)) for m, p in p_values.items()}
    return {"runs": runs, "alpha": config.alpha, "design": config.design, "test": config.test, "arm": model,
            "users": config.users, "planted_watch_shift": planted_watch_shift, "false_positive_rate": rates,
            "mean_difference": {m: finite_mean(pd.Series(d)) for m, d in differences.items()},
            "p_values": p_values, "differences": differences}  # fmt: skip


def _planted(kit: UserKit, watch_shift: float) -> UserKit:
    """`kit` whose statistical users' watch logits are `watch_shift` higher (run_aa's planted effect)."""
    b = kit.behaviour
    config = replace(b.config, watch_shift=b.config.watch_shift + watch_shift)
    return replace(kit, behaviour=StatisticalBehaviour(b.preferences, b.activity_tiers, config, b.dynamics))
