"""The simulated A/B test: which recommender will people like better, and how sure are we?

    result = run_ab(ABConfig(arms="pop,bpr,sasrec", users=200, user_kind="statistical", out=Path("runs/ab")))

1. **World** (world.py): the dataset is split leave-one-out by time. Every arm's recommender is
   fitted on the training part (early stopping on the validation part) and saved in the run
   directory (a rerun loads it). The simulated users' kit (profiles, preference model) is built
   on the same training part; hybrid users' blend is calibrated on the validation items of
   `calibration_users` users, which the kit never saw (the test items reach no user model).
2. **Users**: `users` users drawn with the seed. Paired design (default): each meets every
   arm from the same snapshot (see recarena.simulator.arm_sessions); split design: each is assigned to one arm at
   random, arms of equal size, as in a live test.
3. **Sessions**: one per user and arm, up to `pages` pages of `slate_size` items, logged in
   the run directory's event store with the arm (resumable: a rerun skips stored sessions).
4. **Statistics** (recarena.scenarios.comparisons): every metric of every arm against the control, with bootstrap
   intervals, paired t / Wilcoxon or Welch / Mann-Whitney, Holm across arms and metrics, and
   the users needed for 80% power; off-policy estimates from the control's logs (ope.py).
5. **Output**: ``results.json``, ``report.html`` and a terminal summary.

`run_aa` (selfcheck.py) is the self-check: the control against itself many times; the share of
runs with p < alpha must sit near alpha.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.recommenders import RecommenderError, recommender_names
from recarena.recommenders.service import HttpRecommender
from recarena.simulator.arm_sessions import Twins, simulate_arm, store_frames
from recarena.simulator.atomic import replaced_atomically
from recarena.simulator.data import load_dataset
from recarena.simulator.data.streams import AB_STATISTICS, AB_USERS
from recarena.simulator.exploration import SlatePolicy
from recarena.simulator.parallel import make_executor
from recarena.simulator.rundir import RunDirectory

from recarena.scenarios.ab import metrics as am
from recarena.scenarios.ab.arms import ArmSpec, arm_labels, check_arms, parse_arms
from recarena.scenarios.ab.sharded import ShardSettings, shared_world, simulate_arm_sharded
from recarena.scenarios.ab.world import World, WorldSpec, build_world, build_world_llm, probe_served_arms
from recarena.scenarios.agreement.summary import agreement_summary
from recarena.scenarios.config import ServiceArmOptions, option, parse_model_params
from recarena.scenarios.contract import Scenario, ScenarioError, capped, check_out_folder, where_written, write_results
from recarena.scenarios.comparisons import Comparison, compare_users, coverage_of, gini_of, holm, population_comparison



RUN = "ab"
"""The A/B test's run label in the event store."""


class ABConfigError(ScenarioError):
    """A bad A/B setting (one line, names the field)."""


@dataclass
class ABConfig(ServiceArmOptions):
    """What `recarena ab` (and `recarena run experiment.yaml`) runs."""

    arms: str = option("pop,bpr", f"comma-separated recommenders under test: registry names ({', '.join(recommender_names())}) or "
                                  "recommender services, http://HOST:PORT/PATH or NAME=http://HOST:PORT/PATH (docs/service.md)")
    control: str = option("", "the control arm (default: the first of --arms)")
    model_params: list[str] = option([], "hyper-parameters as MODEL.name=value, e.g. sasrec.epochs=10 bpr.dim=32")
    users: int = option(200, "simulated users (drawn from the dataset's users with the seed)")
    pages: int = option(5, "most pages per session")
    slate_size: int = option(10, "items per page")
    design: Literal["paired", "split"] = option("paired", "paired twins (every user meets every arm) or split (random assignment)")
    test: Literal["t", "rank"] = option("t", "t: paired t / Welch; rank: Wilcoxon / Mann-Whitney")
    alpha: float = option(0.05, "significance level (after Holm's correction across arms and metrics)")
    bootstrap: int = option(2000, "bootstrap resamples for the confidence intervals")
    quotes: int = option(3, "users per arm interviewed in words for the report's quotes")
    explore: float = option(0.1, "control's exploration for off-policy estimates: probability of a random slate from its top --explore-pool (0: off)")
    explore_pool: int = option(50, "the control's top items an exploring slate is drawn from")
    aa: bool = option(False, "run the A/A self-check instead: the control against itself --aa-runs times")
    aa_runs: int = option(200, "A/A replicates (each with its own users and draws)")
    out: Path = option(Path("runs/ab"), "run directory: event store, config, models, results.json, report.html")
    backend: Literal["local", "ray"] = option("local", "where sessions run: this process, or shards as Ray tasks (pip install 'recarena[ray]'); same events either way")
    workers: int = option(2, "Ray workers (CPUs of a local Ray; the shards are 2 per worker)")
    ray_address: str = option("", "an existing Ray cluster's address (default: start a local Ray with --workers CPUs)")
    agreement: Path | None = option(None, "an agreement run's folder (recarena agreement) for the report to summarise (default: OUT/agreement when it holds one)")

    def arm_specs(self) -> list[ArmSpec]:
        """The entries of ``--arms`` (arms.py: registry models and services)."""
        return parse_arms(self.arms)

    def arm_models(self) -> list[str]:
        """Each arm's model: a registry name or a service's URL."""
        return [a.model for a in self.arm_specs()]

    def arm_labels(self) -> list[str]:
        """Unique labels: a model named twice becomes ``pop`` and ``pop#2``; a service is labelled by its name or URL."""
        return arm_labels(self.arm_specs())

    def control_label(self) -> str:
        return self.control or self.arm_labels()[0]

    def validate(self) -> None:
        models = self.arm_models()
        if len(models) < (1 if self.aa else 2):
            raise ABConfigError(f"arms: need at least two arms, got {self.arms!r}")
        check_arms(self.arm_specs())  # RecommenderError naming the valid models (or a broken plugin's distribution), a bad URL
        self.check_user_kind()
        if self.control and self.control not in self.arm_labels():
            raise ABConfigError(f"control: {self.control!r} is not one of the arms {self.arm_labels()}")
        for name, value, low in (("users", self.users, 2), ("pages", self.pages, 1), ("slate_size", self.slate_size, 1),
                                 ("bootstrap", self.bootstrap, 100), ("aa_runs", self.aa_runs, 1)):  # fmt: skip
            if value < low:
                raise ABConfigError(f"{name}: must be at least {low}, got {value}")
        if self.design == "split" and self.users < 2 * len(models):
            raise ABConfigError(f"users: a split design needs at least 2 users per arm, got {self.users} for {len(models)} arms")
        if not 0.0 <= self.explore < 1.0:
            raise ABConfigError(f"explore: must be in [0, 1), got {self.explore}")
        if not 0.0 <= self.max_llm_failure_rate <= 1.0:
            raise ABConfigError(f"max_llm_failure_rate: must be in [0, 1], got {self.max_llm_failure_rate}")
        if not 0.0 < self.alpha < 1.0:
            raise ABConfigError(f"alpha: must be in (0, 1), got {self.alpha}")
        if self.workers < 1:
            raise ABConfigError(f"workers: must be at least 1, got {self.workers}")
        if self.backend == "ray" and self.aa:
            raise ABConfigError("backend: the A/A self-check runs in memory; use --backend local with --aa")
        if self.backend == "ray" and any(a.served for a in self.arm_specs()):
            raise ABConfigError("backend: served arms run with --backend local (this process counts their calls and latency)")
        self.service_params()
        parse_model_params(self.model_params, models)  # the values too: a bad one fails before anything is written
        check_out_folder(self.out)

    def world_spec(self) -> WorldSpec:
        """What building this test's world reads (validates first; a bad --model-params fails here)."""
        self.validate()
        served = {a.model: self.service_params() for a in self.arm_specs() if a.served}  # a service's parameters: how to call it
        return WorldSpec(self.dataset, tuple(dict.fromkeys(self.arm_models())), parse_model_params(self.model_params, self.arm_models()) | served,
                         self.user_kind, self.user_model, self.llm, self.llm_cache, self.calibration_users, self.seed, self.progress,
                         max_llm_failure_rate=self.max_llm_failure_rate)  # fmt: skip

    def assignment(self) -> Assignment:
        """Who meets which arm (the A/A check: the control and its copy ``CONTROL#A'``)."""
        labels = self.arm_labels() if not self.aa else [self.arm_labels()[0], self.arm_labels()[0] + "#A'"]
        return Assignment(self.users, tuple(labels), self.design)

    def comparison_plan(self) -> ComparisonPlan:
        """What summarising the arms reads."""
        return ComparisonPlan(dict(zip(self.arm_labels(), self.arm_models())), self.pages, self.design, self.test, self.alpha,
                              self.bootstrap, self.seed)  # fmt: skip

    def shard_settings(self) -> ShardSettings:
        """What each shard of a distributed run reads besides the world."""
        return ShardSettings(self.user_kind, self.seed, self.pages, self.slate_size, self.threads, self.quotes, self.llm, self.llm_cache,
                             self.max_llm_failure_rate)

    def recorded(self) -> dict[str, Any]:
        """The settings that define the run (what a resume must match)."""
        skip = {"progress", "html", "threads", "out", "llm_cache", "max_llm_failure_rate", "quotes", "backend", "workers", "ray_address", "agreement",
                *self.SERVICE_FIELDS}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}


@dataclass(frozen=True)
class Assignment:
    """Who meets which arm: `users` users drawn from the dataset, and each arm's share of them by `design`."""

    users: int
    labels: tuple[str, ...]
    design: Literal["paired", "split"]


@dataclass(frozen=True)
class ComparisonPlan:
    """What summarising and comparing the arms reads."""

    models: dict[str, str]
    """Each arm's label to its model's registry name."""
    pages: int
    design: Literal["paired", "split"]
    test: Literal["t", "rank"]
    alpha: float
    bootstrap: int
    seed: int


def assign_users(config: Assignment, n_users: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The drawn users and each arm's users (all of them when paired; a balanced random share when split)."""
    rng = AB_USERS.generator(seed)
    users = np.sort(rng.choice(n_users, size=min(config.users, n_users), replace=False))
    labels = config.labels
    if config.design == "paired":
        return users, {label: users for label in labels}
    order = rng.permutation(users)
    return users, {label: np.sort(order[k :: len(labels)]) for k, label in enumerate(labels)}


def compare_arms(config: ComparisonPlan, per_user: dict[str, pd.DataFrame], counts: dict[str, np.ndarray], control: str, seed: int,
                 metrics: tuple[str, ...] = am.USER_METRICS, population: bool = True) -> list[Comparison]:
    """Every metric of every arm against `control`, Holm-adjusted across the whole family."""
    rng = AB_STATISTICS.generator(seed)
    out: list[Comparison] = []
    base = per_user[control]
    for arm, frame in per_user.items():
        if arm == control:
            continue
        for metric in metrics:
            out.append(compare_users(metric, arm, base[metric].to_numpy(), frame[metric].to_numpy(), config.design, config.test,
                                     rng, config.bootstrap, config.alpha))  # fmt: skip
        if population:
            for metric, figure in (("coverage", coverage_of), ("exposure_gini", gini_of)):
                out.append(population_comparison(metric, arm, counts[control], counts[arm], figure, config.design, rng,
                                                 n_boot=min(config.bootstrap, 1000), n_permutations=1000))  # fmt: skip
    adjusted = holm([c.p_value for c in out])
    return [Comparison(**{**asdict(c), "p_holm": float(p)}) for c, p in zip(out, adjusted)]


def run_ab(config: ABConfig, world: World | None = None) -> dict[str, Any]:
    """Run the A/B test of `config` into ``config.out``; returns the results (also in results.json)."""
    started = time.perf_counter()
    spec = config.world_spec()  # settings and model parameters: nothing is written before they pass
    dataset = world.dataset if world is not None else load_dataset(config.dataset)  # nor before the data reads
    capped("users", config.users, dataset.n_users, f"dataset {dataset.name!r}")
    llm = build_world_llm(spec) if world is None else None  # a dead endpoint fails here, before anything is written
    if world is None:
        probe_served_arms(spec)  # so does a recommender service that does not answer
    with RunDirectory(config.out, config.recorded(), config.seed, data=dataset) as run_dir:  # locked: one run at a time
        return _run_ab_in(run_dir, config, world or build_world(spec, models_dir=config.out / "models", llm=llm), started)


def _run_ab_in(run_dir: RunDirectory, config: ABConfig, world: World, started: float) -> dict[str, Any]:
    """`run_ab` inside its open run directory."""
    users, arms = assign_users(config.assignment(), world.dataset.n_users, config.seed)
    labels, models = config.arm_labels(), dict(zip(config.arm_labels(), config.arm_models()))
    control = config.control_label()
    twins = Twins(world.user_factory(config.user_kind), users, config.seed)
    # The control logs for off-policy estimates: a random ordered slate from its top pool on some pages.
    exploration = SlatePolicy(page_epsilon=config.explore, pool=config.explore_pool)
    usage: dict[str, dict[str, float]] = {}
    served: dict[str, dict[str, Any]] = {}  # each served arm's calls during its sessions
    bar = tqdm(total=sum(len(v) for v in arms.values()), desc="sessions (users x arms)", disable=not config.progress)
    executor = make_executor(config.backend, config.workers, config.ray_address or None) if config.backend != "local" else None
    shared = executor.share(shared_world(world, config.shard_settings())) if executor is not None else None
    for position, label in enumerate(labels):
        explore = exploration if label == control else SlatePolicy()
        recommender = world.recommenders[models[label]]
        mark = recommender.calls.mark() if isinstance(recommender, HttpRecommender) else None
        if executor is None:
            arm_run = simulate_arm(RUN, label, position, recommender, twins, arms[label], seed=config.seed,
                                   pages=config.pages, slate_size=config.slate_size, store=run_dir.events, policy=explore,
                                   quotes=config.quotes, llm=world.llm, threads=config.threads, progress=bar)  # fmt: skip
        else:
            arm_run = simulate_arm_sharded(executor, shared, config.shard_settings(), label, position, models[label], arms[label], explore,
                                           run_dir.events, progress=bar, run=RUN)  # fmt: skip
        usage[label] = {**arm_run.llm_usage, "seconds": arm_run.seconds}
        if mark is not None:
            served[label] = {"url": recommender.url, **recommender.calls.since(mark)}
    bar.close()
    if executor is not None:
        executor.close()
    impressions, sessions = store_frames(run_dir.events, RUN)
    results = {"config": config.recorded() | {"out": str(config.out)},
               **summarise(config.comparison_plan(), world, users, arms, impressions, sessions, usage, control)}  # fmt: skip
    for label, calls in served.items():  # a served arm's calls: how many, failed, retried, and their latency
        results["arms"][label]["service"] = calls
    if world.llm is not None:  # fallbacks are guesses inside the figures: say how many, per arm
        results["llm_health"] = am.llm_health(usage, config.max_llm_failure_rate)
    results["run"] = {"directory": str(config.out), "seed": config.seed, "versions": run_dir.meta.get("versions"),
                      "resumed": run_dir.resumed, "seconds": time.perf_counter() - started}  # fmt: skip
    # How far this simulator was checked against reality on this data: an agreement run's figures, if there is one.
    results["agreement"] = agreement_summary(config.agreement or config.out / "agreement", world.dataset.name, config.user_model)
    from recarena.scenarios.ab.ope import off_policy_estimates

    if config.explore > 0:
        results["ope"] = off_policy_estimates(world, impressions, arms, models, control, slate_size=config.slate_size,
                                              epsilon=config.explore, pool_depth=config.explore_pool)  # fmt: skip
    results["results_file"] = str(write_results(results, config.out))
    if config.html:
        from recarena.scenarios.ab.report import write_report

        with replaced_atomically(config.out / "report.html") as partial:
            write_report(results, impressions, sessions, world, partial)
        results["report"] = str(config.out / "report.html")
    return results


def summarise(config: ComparisonPlan, world: World, users: np.ndarray, arms: dict[str, np.ndarray], impressions: pd.DataFrame,
              sessions: pd.DataFrame, usage: dict[str, dict[str, float]], control: str) -> dict[str, Any]:
    """Each arm's figures and every comparison with the control (the results without the config and run blocks)."""
    information = am.self_information(world.split.train_dataset())
    models = config.models
    per_user, counts, figures = {}, {}, {}
    for label, arm_users in arms.items():
        imp, ses = impressions[impressions["arm"] == label], sessions[sessions["arm"] == label]
        per_user[label] = am.user_metrics(imp, ses, arm_users, world.dataset, information)
        counts[label] = am.exposure_counts(imp, arm_users, world.dataset.n_items)
        totals = counts[label].sum(0)[None]
        figures[label] = {
            "model": models.get(label, label), "users": int(len(arm_users)),
            **{m: am.finite_mean(per_user[label][m]) for m in am.USER_METRICS},
            "coverage": float(coverage_of(totals)[0]), "exposure_gini": float(gini_of(totals)[0]),
            "impressions": int(len(imp)), "impression_watch_rate": float(imp["watched"].mean()) if len(imp) else None,
            "exit_depth_survival": am.exit_depth_survival(ses, config.pages),
            "genre_exposure": am.genre_exposure(imp, world.dataset),
            "ratings": {str(k): int(v) for k, v in pd.to_numeric(imp.loc[imp["watched"].astype(bool), "rating"]).astype(int).value_counts().sort_index().items()},
            "llm": usage.get(label, {}), "fit_seconds": world.fit_seconds.get(models[label]),
        }  # fmt: skip
    comparisons = compare_arms(config, per_user, counts, control, config.seed)
    real = world.dataset.interactions
    real_ratings = pd.to_numeric(real.loc[real["user"].isin(users), "rating"]).round().clip(1, 5).astype(int).value_counts().sort_index()
    quotes = sessions[sessions["liked"].fillna("").astype(str).str.len() > 0][["arm", "user", "satisfaction", "liked", "missed"]]
    return {
        "control": control, "design": config.design,
        "dataset": world.dataset.name, "split": world.split.summary(), "users": users.tolist(),
        "arms": figures, "comparisons": [c.as_dict() for c in comparisons],
        "real_ratings": {str(k): int(v) for k, v in real_ratings.items()},
        "quotes": quotes.to_dict(orient="records"),
        "blend": asdict(world.blend) if world.blend is not None else None,
        "llm_total": world.llm.accountant.report()["total"] if world.llm is not None else None,
    }


class ABScenario(Scenario[ABConfig]):
    """Simulated A/B test: each arm's recommender meets the same simulated users (paired twins) or a random share of
    them (split); effects against the control with bootstrap intervals, tests, Holm correction and the users needed
    for 80% power; results.json and report.html in --out. With --aa, the A/A self-check instead."""

    name = "ab"
    help = "simulated A/B test of recommenders with simulated users (--aa: the A/A self-check)"
    config_type = ABConfig

    def run(self, config: ABConfig) -> dict[str, Any]:
        config.validate()
        if config.aa:
            from recarena.scenarios.ab.selfcheck import run_aa  # it builds on this module

            result = run_aa(config)
            write_results(result, config.out)
            return result
        return run_ab(config)

    def summary(self, results: dict[str, Any]) -> str:
        from recarena.scenarios.ab.report import format_aa, format_summary

        if "false_positive_rate" in results:
            return format_aa(results)
        return format_summary(results) + "\n" + where_written(results)


__all__ = ["ABConfig", "ABConfigError", "ABScenario", "World", "build_world", "run_ab", "RecommenderError"]
