"""The agreement self-check: would the simulated A/B rank these recommenders as real held-out behaviour does?

    results = run_agreement(AgreementConfig(arms="random,pop,itemknn,bpr,lightgcn,sasrec", users=300))

Run it on a dataset before trusting `recarena ab` there.

1. **World** (`recarena.scenarios.ab.world`): the data is split leave-one-out by time, or by a
   global cut in time (``--split temporal``: the last `test_fraction` of interactions held
   out). Every arm's recommender is fitted on the training part (early stopping on the
   validation part); the users' kit on the same part, their dynamics fitted on the validation
   part. Nothing of the test part reaches a model, a user or a prompt.
2. **Real side** (sides.py): each arm's NDCG@k of every test user who has a training history,
   offline: the population a simulated user can stand for, as it starts from that history (in
   a temporal split many test users are new; their figure is reported beside, not compared).
3. **Simulated side**: a paired A/B (every simulated user meets every arm from the same
   snapshot) of `users` users drawn from that population.
   With ``--compare-static`` (default) the same users also run as today's static users, so
   both user models are measured in one run.
4. **Figures** (orders.py): Spearman and Kendall between the arms' real and simulated orders
   with bootstrap intervals over users; for every pair whose real difference is clear, whether
   the simulated A/B's significant winner matches; the per-arm table; the users' own model's
   NDCG@k beside the arms; the dynamics variants tried (chosen by validation likelihood).
5. ``results.json`` and ``report.html`` (a scatter of real NDCG@k against the simulated metric).
   Sessions go to the run directory's event store: a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from recarena.recommenders import recommender_class, recommender_names
from recarena.simulator.arm_sessions import Twins, simulate_arm, store_frames
from recarena.simulator.atomic import replaced_atomically
from recarena.simulator.data import load_dataset
from recarena.simulator.data.streams import AGREEMENT_STATISTICS, AGREEMENT_USERS
from recarena.simulator.rundir import RunDirectory

from recarena.scenarios.ab.metrics import llm_health
from recarena.scenarios.ab.world import World, WorldSpec, build_world
from recarena.scenarios.agreement.orders import concordance, pair_verdicts, rank_agreement
from recarena.scenarios.agreement.sides import METRIC_LABELS, PrimaryMetric, real_side, simulated_side, user_model_ndcg
from recarena.scenarios.config import UserKindOptions, option, parse_model_params
from recarena.scenarios.contract import Scenario, ScenarioError, capped, check_out_folder, where_written, write_results

DEFAULT_ARMS = "random,pop,itemknn,bpr,lightgcn,sasrec"


@dataclass
class AgreementConfig(UserKindOptions):
    """What `recarena agreement` runs."""

    arms: str = option(DEFAULT_ARMS, f"comma-separated recommenders to order (registry names: {', '.join(recommender_names())})")
    model_params: list[str] = option([], "hyper-parameters as MODEL.name=value, e.g. sasrec.epochs=10 bpr.dim=32")
    split: Literal["loo", "temporal"] = option("loo", "loo: each user's last item is test; temporal: the last --test-fraction of time is test")
    test_fraction: float = option(0.2, "temporal split: the share of the latest interactions held out (validation: the tenth of interactions before it)")
    users: int = option(300, "simulated users (drawn from the evaluated users who have a training history)")
    pages: int = option(5, "most pages per session")
    slate_size: int = option(10, "items per page")
    metric: PrimaryMetric = option("watch_rate", "the simulated figure ordered against real NDCG: watch_rate or watches (per session)")
    k: int = option(10, "the real figure is NDCG@k on the test part")
    clear: float = option(0.10, "a real difference is clear when it is at least this share of the lower arm's NDCG and its interval excludes 0")
    alpha: float = option(0.05, "significance level of the simulated pairwise tests (Holm across the pairs)")
    bootstrap: int = option(1000, "bootstrap resamples for the intervals")
    compare_static: bool = option(True, "also run the same users as static users (taste alone) in this run, for comparison")
    out: Path = option(Path("runs/agreement"), "run directory: event store, config, models, results.json, report.html")

    def arm_models(self) -> list[str]:
        return [a.strip() for a in self.arms.split(",") if a.strip()]

    def user_models(self) -> list[str]:
        """The user models this run simulates: the chosen one, then static when compared."""
        return [self.user_model] + (["static"] if self.compare_static and self.user_model != "static" else [])

    def validate(self) -> None:
        models = self.arm_models()
        if len(models) < 3:
            raise ScenarioError(f"arms: an order needs at least three recommenders, got {self.arms!r}")
        if len(set(models)) != len(models):
            raise ScenarioError(f"arms: each recommender once, got {self.arms!r}")
        for model in models:
            recommender_class(model)  # RecommenderError naming the valid ones
        for name, value, low in (("users", self.users, 4), ("pages", self.pages, 1), ("slate_size", self.slate_size, 1),
                                 ("k", self.k, 1), ("bootstrap", self.bootstrap, 100)):  # fmt: skip
            if value < low:
                raise ScenarioError(f"{name}: must be at least {low}, got {value}")
        if not 0.0 < self.test_fraction <= 0.5:
            raise ScenarioError(f"test_fraction: must be in (0, 0.5], got {self.test_fraction}")
        if not 0.0 <= self.clear:
            raise ScenarioError(f"clear: must be at least 0, got {self.clear}")
        if not 0.0 < self.alpha < 1.0:
            raise ScenarioError(f"alpha: must be in (0, 1), got {self.alpha}")
        parse_model_params(self.model_params, models)
        check_out_folder(self.out)

    def world_spec(self) -> WorldSpec:
        self.validate()
        return WorldSpec(self.dataset, tuple(self.arm_models()), parse_model_params(self.model_params, self.arm_models()), self.user_kind,
                         self.user_model, self.llm, self.llm_cache, self.calibration_users, self.seed, self.progress, self.split,
                         self.test_fraction, self.max_llm_failure_rate)  # fmt: skip

    def recorded(self) -> dict[str, Any]:
        """The settings that define the run (what a resume must match)."""
        skip = {"progress", "html", "threads", "out", "llm_cache", "max_llm_failure_rate"}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}


def run_agreement(config: AgreementConfig, world: World | None = None) -> dict[str, Any]:
    """Run the agreement check of `config` into ``config.out``; returns the results (also in results.json)."""
    started = time.perf_counter()
    spec = config.world_spec()  # every setting checked before anything is written
    dataset = world.dataset if world is not None else load_dataset(config.dataset)
    capped("users", config.users, dataset.n_users, f"dataset {dataset.name!r}")
    with RunDirectory(config.out, config.recorded(), config.seed, data=dataset) as run_dir:
        world = world or build_world(spec, models_dir=config.out / "models")
        results = _run_in(run_dir, config, world)
        results["run"] = {"directory": str(config.out), "seed": config.seed, "versions": run_dir.meta.get("versions"),
                          "resumed": run_dir.resumed, "seconds": time.perf_counter() - started}  # fmt: skip
        results["results_file"] = str(write_results(results, config.out))
        if config.html:
            from recarena.scenarios.agreement.report import write_report

            with replaced_atomically(config.out / "report.html") as partial:
                write_report(results, partial)
            results["report"] = str(config.out / "report.html")
        return results


def simulated_population(evaluated: np.ndarray, world: World) -> np.ndarray:
    """The `evaluated` test users who have a training history: whom a simulated user can stand for (it starts from that
    history). Both sides are measured on this population; test users without one (new in a temporal split) are left out."""
    pool = np.intersect1d(evaluated, np.unique(world.split.train["user"].to_numpy(np.int64)))
    if len(pool) < 4:
        raise ScenarioError(f"split: only {len(pool)} test users have a training history; the agreement check needs at least 4")
    return pool


def simulated_users(population: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` users drawn from the `population` (`simulated_population`)."""
    return np.sort(AGREEMENT_USERS.generator(seed).choice(population, size=min(count, len(population)), replace=False))


def _run_in(run_dir: RunDirectory, config: AgreementConfig, world: World) -> dict[str, Any]:
    arms = config.arm_models()
    models = {arm: arm for arm in arms}
    every_user = real_side(world.recommenders, models, world.split, config.k)
    population = simulated_population(next(iter(every_user.values())).index.to_numpy(np.int64), world)
    real = {arm: figures.loc[population] for arm, figures in every_user.items()}
    users = simulated_users(population, config.users, config.seed)
    rng = AGREEMENT_STATISTICS.generator(config.seed)
    real_arrays = {arm: real[arm].to_numpy() for arm in arms}
    ndcg = f"ndcg@{config.k}"
    out: dict[str, Any] = {
        "dataset": world.dataset.name, "split": {"strategy": config.split, **world.split.summary()}, "metric": config.metric,
        "metric_label": METRIC_LABELS[config.metric], "real_metric": ndcg, "users": users.tolist(),
        "real": {arm: {ndcg: float(real[arm].mean()), "users": int(len(real[arm])),
                       "all_test_users": float(every_user[arm].mean()), "all_test_users_count": int(len(every_user[arm]))} for arm in arms},
        "user_models": {}, "config": config.recorded() | {"out": str(config.out)},
    }  # fmt: skip
    report = world.kit.dynamics_report
    out["dynamics"] = None if report is None else {"chosen": report.chosen, "users": report.users,
                                                   "variants": {n: asdict(v) for n, v in report.variants.items()}}  # fmt: skip
    bar = tqdm(total=len(users) * len(arms) * len(config.user_models()), desc="sessions (users x arms x user models)", disable=not config.progress)
    for user_model in config.user_models():
        kit = world.kit if user_model == config.user_model else world.kit.static()
        blend = world.blend if user_model == config.user_model else _blend_for(kit, world, config)
        twins = Twins(kit.factory(config.user_kind, world.llm, blend), users, config.seed)
        label = f"agreement.{user_model}"
        usage = {}
        for position, arm in enumerate(arms):
            usage[arm] = simulate_arm(label, arm, position, world.recommenders[arm], twins, users, seed=config.seed, pages=config.pages,
                                      slate_size=config.slate_size, store=run_dir.events, llm=world.llm, threads=config.threads,
                                      progress=bar).llm_usage  # fmt: skip
        impressions, sessions = store_frames(run_dir.events, label)
        simulated = simulated_side(impressions, sessions, arms, users)
        figures = {arm: simulated[arm][config.metric].to_numpy() for arm in arms}
        verdicts = pair_verdicts(real_arrays, figures, rng, clear=config.clear, alpha=config.alpha, n_boot=config.bootstrap)
        rank = rank_agreement(real_arrays, figures, rng, n_boot=config.bootstrap)
        out["user_models"][user_model] = {
            "arms": {arm: {m: float(np.nanmean(simulated[arm][m])) for m in METRIC_LABELS} for arm in arms},
            "rank": rank.as_dict(), "pairs": [v.as_dict() for v in verdicts], "concordance": concordance(verdicts),
            "best_agrees": rank.real_order[-1] == rank.simulated_order[-1],
            "own_ndcg": user_model_ndcg(kit, world.split, config.k, population),
            "blend": asdict(blend) if blend is not None else None,
            # Fallbacks are guesses inside the figures: how many, per arm (the health rule stops a run with too many).
            "llm_health": llm_health(usage, config.max_llm_failure_rate) if world.llm is not None else None,
        }  # fmt: skip
    bar.close()
    return out


def _blend_for(kit: Any, world: World, config: AgreementConfig) -> Any:
    """The hybrid blend of a compared user model (calibrated on validation, as the world's own); None for other kinds."""
    if config.user_kind != "hybrid":
        return None
    from recarena.agents.calibration import calibrate_on_validation

    return calibrate_on_validation(kit, world.split, world.llm, n_users=config.calibration_users, positives_per_user=2, seed=config.seed,
                                   progress=config.progress)  # fmt: skip


def format_summary(results: dict[str, Any]) -> str:
    """The terminal summary: the real order, then each user model's agreement with it."""
    ndcg = results["real_metric"]
    real = results["real"]
    order = sorted(real, key=lambda a: real[a][ndcg])
    lines = [f"{results['dataset']}  split={results['split']['strategy']}  real {ndcg}: " + " < ".join(f"{a} {real[a][ndcg]:.4f}" for a in order)]
    for name, figures in results["user_models"].items():
        rank, pairs = figures["rank"], figures["concordance"]
        sim = figures["arms"]
        lines.append(f"{name} users, {results['metric']}: " + " < ".join(f"{a} {sim[a][results['metric']]:.3f}" for a in rank["simulated_order"]))
        lines.append(f"  Spearman {_num(rank['spearman'])} [{_num(rank['spearman_ci'][0])}, {_num(rank['spearman_ci'][1])}]  "
                     f"Kendall {_num(rank['kendall'])} [{_num(rank['kendall_ci'][0])}, {_num(rank['kendall_ci'][1])}]  "
                     f"clear pairs: {pairs['agree']} agree, {pairs['disagree']} disagree, {pairs['undecided']} undecided of {pairs['clear_pairs']} "
                     f"({pairs['same_direction']} in the real direction)  "
                     f"best arm {'agrees' if figures['best_agrees'] else 'DIFFERS'}  users' own {ndcg} {figures['own_ndcg']:.4f}")  # fmt: skip
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.2f}"


class AgreementScenario(Scenario[AgreementConfig]):
    """The agreement self-check: a paired simulated A/B of several recommenders and their offline evaluation on the same split, in
    one run; Spearman and Kendall between the simulated and the real orders with bootstrap intervals, pairwise concordance on the
    pairs whose real difference is clear, the per-arm table and the users' own NDCG. Run it before trusting `recarena ab` on a dataset."""

    name = "agreement"
    help = "does the simulated A/B order recommenders as real held-out behaviour does? (run before trusting ab)"
    config_type = AgreementConfig

    def run(self, config: AgreementConfig) -> dict[str, Any]:
        return run_agreement(config)

    def summary(self, results: dict[str, Any]) -> str:
        return format_summary(results) + "\n" + where_written(results)
