"""The feedback loop: what happens when a recommender keeps learning from its own users?

    results = run_feedback_loop(FeedbackConfig(arms="pop,bpr,bpr+mmr", users=300, rounds=10, out=Path("runs/loop")))

1. **World** (shared with the A/B test, `recarena.scenarios.ab.world.build_world`): the dataset is split leave-one-out
   by time; every model is fitted once on the training part (early stopping on validation) and
   saved in ``out/models``; the users' kit is built on the same training part; hybrid users'
   blend is calibrated on the validation items of `calibration_users` users.
2. **Arms**: ``MODEL[+mmr][+epsilon][+frozen]``. Every arm starts from the saved model (the same
   state), the same `users` users drawn with the seed, and the same per-user, per-round draws.
   ``+mmr`` re-ranks the model's top `pool` items for genre diversity, ``+epsilon`` fills each slot
   with a random catalogue item with probability `epsilon` (`recarena.simulator.exploration`),
   ``+frozen`` never updates the model: the control that shows what the loop itself does.
3. **Rounds** (`recarena.simulator.population.Population`, a Mesa model): each round every user
   is active with its activity tier's probability and browses up to `pages` pages; then the
   model is updated on the round's watches (`update_every`): pop adds the counts, BPR, LightGCN
   and SASRec train further from their current state on everything logged so far
   (``MODEL.update_epochs=N`` sets how long; ItemKNN refits). Each arm's events live in
   ``out/arms/LABEL/events.sqlite``; a rerun resumes.
4. **Figures per round** (`recarena.simulator.metrics`): intra-list and per-user genre
   diversity, top-genre share and number of genres per user (shown and watched), coverage,
   exposure Gini, watch rate, rating, satisfaction. The change from the first to the last
   round gets a 95% bootstrap interval over users (the round's active users differ).
5. **Output**: ``results.json``, ``report.html`` (curves over rounds) and a terminal summary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.recommenders import Recommender, RecommenderError, recommender_class, recommender_names
from recarena.simulator.data import load_dataset
from recarena.simulator.data.streams import FEEDBACK_BOOTSTRAP
from recarena.simulator.exploration import SlatePolicy
from recarena.simulator.metrics import FIGURES, group_genre_figures
from recarena.simulator.population import Population, PopulationConfig
from recarena.simulator.rundir import RunDirectory

from recarena.scenarios.ab.world import World, WorldSpec, build_world
from recarena.scenarios.config import UserKindOptions, option, parse_model_params
from recarena.scenarios.contract import Scenario, ScenarioError, capped, check_out_folder, where_written, write_results

MODIFIERS = ("mmr", "epsilon", "frozen")
#: The figures the summary and the change table lead with (what Agent4Rec's filter bubble is about).
HEADLINE = ("top_genre_share", "genres_shown", "user_genre_diversity", "coverage", "exposure_gini", "watch_rate")
#: Per-user figures whose first-to-last change gets a bootstrap interval over users.
PER_USER = ("top_genre_share", "genres_shown", "user_genre_diversity", "watch_rate")


class FeedbackConfigError(ScenarioError):
    """A bad feedback-loop setting (one line, names the field)."""


@dataclass(frozen=True)
class Arm:
    """One arm: a model, how its ranking becomes slates, and whether it learns from the loop."""

    label: str
    model: str
    explore: SlatePolicy
    frozen: bool


@dataclass
class FeedbackConfig(UserKindOptions):
    """What `recarena feedback-loop` (and YAML ``kind: feedback-loop``) runs."""

    arms: str = option("random,pop,bpr,bpr+frozen,bpr+mmr,bpr+epsilon",
                       f"comma-separated arms MODEL[+mmr][+epsilon][+frozen]; MODEL a registry name ({', '.join(recommender_names())}); "
                       "+mmr: genre MMR re-ranking, +epsilon: epsilon-greedy slots, +frozen: never updated")  # fmt: skip
    model_params: list[str] = option([], "hyper-parameters as MODEL.name=value, e.g. sasrec.epochs=10 bpr.update_epochs=5")
    users: int = option(300, "users in the population (drawn from the dataset's users with the seed)")
    rounds: int = option(10, "rounds (simulated days): browse, then the recommender learns from what was watched")
    pages: int = option(5, "most pages per session")
    slate_size: int = option(10, "items per page")
    activity: list[float] = option([0.2, 0.4, 0.7], "probability that a user of activity tier low, medium, high is active in a round")
    update_every: int = option(1, "update the recommenders after every this many rounds (0: never; +frozen arms never do)")
    epsilon: float = option(0.2, "+epsilon arms: per slot, probability of a uniformly random catalogue item")
    mmr: float = option(0.5, "+mmr arms: weight of genre diversity against relevance, in (0, 1)")
    pool: int = option(100, "+mmr arms: how many of the model's top items are re-ranked")
    interview: bool = option(True, "interview users after each session (the satisfaction figure; an LLM call for LLM users)")
    bootstrap: int = option(1000, "bootstrap resamples for the intervals of the first-to-last changes")
    out: Path = option(Path("runs/feedback-loop"), "run directory: models, per-arm event stores, results.json, report.html")

    def arm_list(self) -> list[Arm]:
        """The parsed arms (FeedbackConfigError naming `arms` on a bad one)."""
        out = []
        for text in (a.strip() for a in self.arms.split(",")):
            if not text:
                continue
            model, *mods = [p.strip() for p in text.split("+")]
            for mod in mods:
                if mod not in MODIFIERS:
                    raise FeedbackConfigError(f"arms: unknown modifier {mod!r} in {text!r}; known: {', '.join(MODIFIERS)}")
            try:
                recommender_class(model)
            except RecommenderError as error:
                raise FeedbackConfigError(f"arms: {error}") from None
            policy = SlatePolicy(epsilon=self.epsilon if "epsilon" in mods else 0.0, mmr=self.mmr if "mmr" in mods else 0.0, pool=self.pool)
            out.append(Arm(text, model, policy, "frozen" in mods))
        return out

    def arm_models(self) -> list[str]:
        """The distinct models to fit (what `build_world` reads)."""
        return list(dict.fromkeys(a.model for a in self.arm_list()))

    def validate(self) -> None:
        arms = self.arm_list()
        if not arms:
            raise FeedbackConfigError(f"arms: need at least one arm, got {self.arms!r}")
        labels = [a.label for a in arms]
        if len(set(labels)) < len(labels):
            raise FeedbackConfigError(f"arms: an arm is listed twice in {self.arms!r}")
        for name, value, low in (("users", self.users, 2), ("rounds", self.rounds, 1), ("pages", self.pages, 1),
                                 ("slate_size", self.slate_size, 1), ("pool", self.pool, 1), ("bootstrap", self.bootstrap, 100),
                                 ("update_every", self.update_every, 0), ("calibration_users", self.calibration_users, 1)):  # fmt: skip
            if value < low:
                raise FeedbackConfigError(f"{name}: must be at least {low}, got {value}")
        if len(self.activity) != 3 or not all(0.0 <= p <= 1.0 for p in self.activity) or max(self.activity) == 0:
            raise FeedbackConfigError(f"activity: need three probabilities in [0, 1] (low, medium, high tier), not all 0; got {self.activity}")
        if not 0.0 < self.epsilon <= 1.0:
            raise FeedbackConfigError(f"epsilon: must be in (0, 1], got {self.epsilon}")
        if not 0.0 < self.mmr < 1.0:
            raise FeedbackConfigError(f"mmr: must be in (0, 1), got {self.mmr}")
        if self.pool < self.slate_size and any(a.explore.mmr > 0 for a in arms):
            raise FeedbackConfigError(f"pool: must be at least slate_size ({self.slate_size}) for +mmr arms, got {self.pool}")
        parse_model_params(self.model_params, self.arm_models())  # the values too: a bad one fails before anything is written
        check_out_folder(self.out)

    def world_spec(self) -> WorldSpec:
        """What building the loop's world reads (the A/B test's world: `recarena.scenarios.ab.world`)."""
        self.validate()
        models = self.arm_models()
        return WorldSpec(self.dataset, tuple(models), parse_model_params(self.model_params, models), self.user_kind, self.user_model,
                         self.llm, self.llm_cache, self.calibration_users, self.seed, self.progress,
                         max_llm_failure_rate=self.max_llm_failure_rate)  # fmt: skip

    def recorded(self) -> dict[str, Any]:
        """The settings that define the run (what a resume must match)."""
        skip = {"progress", "html", "threads", "out", "llm_cache", "max_llm_failure_rate", "bootstrap"}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}


def fresh_recommender(world: World, model: str, models_dir: Path, progress: bool) -> Recommender:
    """A copy of the world's fitted `model` in its fitted state (every arm starts from the same one)."""
    path = models_dir / model
    if not (path / "recommender.json").exists():
        world.recommenders[model].save(path)
    recommender = Recommender.load(path)
    recommender.params = recommender.params.model_copy(update={"progress": progress})
    return recommender


def run_feedback_loop(config: FeedbackConfig, world: World | None = None) -> dict[str, Any]:
    """Run every arm's loop into ``config.out``; returns the results (also in results.json)."""
    started = time.perf_counter()
    spec = config.world_spec()  # settings and model parameters: nothing is written before they pass
    dataset = world.dataset if world is not None else load_dataset(config.dataset)  # nor before the data reads
    capped("users", config.users, dataset.n_users, f"dataset {dataset.name!r}")
    # Locked for the whole loop; a rerun into a run of other settings or data stops here, before any fitting.
    with RunDirectory(config.out, config.recorded(), config.seed, data=dataset):
        return _run_loop(config, world or build_world(spec, models_dir=Path(config.out) / "models"), started)


def _run_loop(config: FeedbackConfig, world: World, started: float) -> dict[str, Any]:
    """`run_feedback_loop` inside its open run directory."""
    out = Path(config.out)
    models_dir = out / "models"
    arms = config.arm_list()
    bar = tqdm(total=len(arms) * config.rounds, desc="rounds (arms x rounds)", disable=not config.progress)
    runs: dict[str, dict[str, Any]] = {}
    for arm in arms:
        runs[arm.label] = _run_arm(config, world, arm, models_dir, bar)
    bar.close()
    results = summarise(config, world, arms, runs)
    results["run"] = {"directory": str(out), "seed": config.seed, "seconds": time.perf_counter() - started}
    results["results_file"] = str(write_results(results, out))
    if config.html:
        from recarena.scenarios.feedback_loop.report import write_report

        results["report"] = str(write_report(results, out / "report.html"))
    return results


def _run_arm(config: FeedbackConfig, world: World, arm: Arm, models_dir: Path, bar: Any) -> dict[str, Any]:
    started = time.perf_counter()
    before = _llm_total(world.llm)
    population_config = PopulationConfig(
        rounds=config.rounds, slate_size=config.slate_size, max_pages=config.pages, activity=tuple(config.activity),
        n_users=config.users, update_every=0 if arm.frozen else config.update_every, interview=config.interview,
        threads=config.threads, run="feedback-loop", arm=arm.label, progress=False, explore=arm.explore,
    )  # fmt: skip
    recommender = fresh_recommender(world, arm.model, models_dir, progress=False)
    # The loop's own run directory checks the data by content; a path here would refuse the same folder given another way.
    recorded = {k: v for k, v in config.recorded().items() if k != "dataset"}
    population = Population(world.kit, recommender, population_config, seed=config.seed, make_user=world.user_factory(config.user_kind),
                            run_dir=Path(config.out) / "arms" / _folder(arm.label), describe={"feedback_loop": recorded})  # fmt: skip
    bar.update(population.round)
    while population.round < config.rounds:
        population.step()
        bar.update(1)
    figures = population.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    impressions = population.events.impressions("feedback-loop", arm.label)
    users = [a.user_id for a in population.user_agents]
    population.close()
    after = _llm_total(world.llm)
    return {"figures": figures, "impressions": impressions, "users": users, "seconds": time.perf_counter() - started,
            "llm": {k: after[k] - before.get(k, 0.0) for k in after}}  # fmt: skip


def _folder(label: str) -> str:
    return label.replace("+", "_")


def _llm_total(llm: Any) -> dict[str, float]:
    if llm is None:
        return {}
    return {k: float(v) for k, v in asdict(llm.accountant.total()).items()}


def per_user_round_figures(impressions: pd.DataFrame, matrix: np.ndarray, round_: int) -> pd.DataFrame:
    """One row per user active in `round_`: the per-user figures of `PER_USER`."""
    frame = impressions[impressions["round"] == round_]
    if len(frame) == 0:
        return pd.DataFrame(columns=list(PER_USER))
    users, index = np.unique(frame["user"].to_numpy(np.int64), return_inverse=True)
    genre = group_genre_figures(index, frame["item"].to_numpy(np.int64), matrix)
    watch = np.bincount(index, weights=frame["watched"].to_numpy(float)) / np.bincount(index)
    return pd.DataFrame({"top_genre_share": genre["top_share"], "genres_shown": genre["genres"],
                         "user_genre_diversity": genre["diversity"], "watch_rate": watch}, index=pd.Index(users, name="user"))  # fmt: skip


def bootstrap_change(first: np.ndarray, last: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict[str, float | None]:
    """mean(last) - mean(first) with a 95% percentile interval resampling each round's users."""
    first, last = first[np.isfinite(first)], last[np.isfinite(last)]
    if len(first) < 2 or len(last) < 2:
        return {"change": None, "ci_low": None, "ci_high": None}
    draws = rng.choice(last, (n_boot, len(last))).mean(1) - rng.choice(first, (n_boot, len(first))).mean(1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"change": float(last.mean() - first.mean()), "ci_low": float(low), "ci_high": float(high)}


def summarise(config: FeedbackConfig, world: World, arms: list[Arm], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    matrix = world.kit.history.genre_matrix()
    last_round = config.rounds - 1
    out: dict[str, Any] = {}
    for position, arm in enumerate(arms):
        run = runs[arm.label]
        figures: pd.DataFrame = run["figures"]
        rng = FEEDBACK_BOOTSTRAP.generator(config.seed, arm=position)
        first_users = per_user_round_figures(run["impressions"], matrix, 0)
        last_users = per_user_round_figures(run["impressions"], matrix, last_round)
        changes = {m: bootstrap_change(first_users[m].to_numpy(float), last_users[m].to_numpy(float), rng, config.bootstrap) for m in PER_USER}
        for m in FIGURES:
            if m not in changes:
                changes[m] = {"change": _value(figures[m].iloc[-1]) - _value(figures[m].iloc[0]) if _both(figures[m]) else None}
        out[arm.label] = {
            "model": arm.model, "explore": arm.explore.recorded(), "frozen": arm.frozen,
            "rounds": [{m: _value(row[m]) for m in FIGURES} for _, row in figures.iterrows()],
            "first": {m: _value(figures[m].iloc[0]) for m in FIGURES}, "last": {m: _value(figures[m].iloc[-1]) for m in FIGURES},
            "change": changes, "users_first_round": int(len(first_users)), "users_last_round": int(len(last_users)),
            "llm": run["llm"], "seconds": run["seconds"], "fit_seconds": world.fit_seconds.get(arm.model),
        }  # fmt: skip
    users = next(iter(runs.values()))["users"]
    return {
        "config": config.recorded() | {"out": str(config.out)}, "dataset": world.dataset.name, "split": world.split.summary(),
        "users": users, "n_genres": int(matrix.shape[1]), "arms": out, "figures": list(FIGURES),
        "blend": asdict(world.blend) if world.blend is not None else None,
        "llm_total": world.llm.accountant.report()["total"] if world.llm is not None else None,
    }  # fmt: skip


def _value(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _both(series: pd.Series) -> bool:
    return bool(np.isfinite(float(series.iloc[0])) and np.isfinite(float(series.iloc[-1])))


class FeedbackLoopScenario(Scenario[FeedbackConfig]):
    """Feedback loop: each arm's recommender serves the same simulated population round after round and retrains (or
    fine-tunes) on what its users watched; per-round genre diversity, top-genre share, genres per user, coverage,
    exposure Gini, watch rate, rating and satisfaction show whether the loop narrows what people see (the filter bubble)
    and whether exploration (+mmr, +epsilon) slows it; +frozen arms are the no-loop control. results.json and
    report.html with the curves in --out."""

    name = "feedback-loop"
    help = "feedback loop: recommenders retrained on their own users round after round (filter bubble, exploration arms)"
    config_type = FeedbackConfig

    def run(self, config: FeedbackConfig) -> dict[str, Any]:
        return run_feedback_loop(config)

    def summary(self, results: dict[str, Any]) -> str:
        from recarena.scenarios.feedback_loop.report import format_summary

        return format_summary(results) + "\n" + where_written(results)
