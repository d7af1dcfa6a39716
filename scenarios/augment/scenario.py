"""`recarena augment`: do simulated interactions make a real recommender better?

    results = AugmentScenario().run(AugmentConfig(recommenders="bpr,lightgcn,sasrec", out=Path("runs/augment")))

1. **Split**: the dataset is split leave-one-out by time; validation and test stay untouched
   and are the same for every variant. Each **regime** has its own training part: ``full``
   (every training interaction) or ``sparse`` (each user's first n, n uniform in
   [`sparse_min`, `sparse_max`] per user, drawn once with the seed).
2. **Users**: per regime the users' kit (profiles, preference model) is built on that training
   part only; hybrid users' blend is calibrated on the last two *training*
   interactions of `calibration_users` users, with a kit that did not see them. The page
   source (`browse`) is fitted on the training part without validation. Nothing held out
   reaches the users or any synthetic generator.
3. **Synthetic data** (data.py): `sessions` sessions of up to `pages` pages per user;
   watches become interactions, at most ``ceil(ratio x the user's training count)`` per user.
   The naive baselines (`baselines`) give each user exactly as many items: popularity-weighted,
   uniform, or (``shown``) the items the pages showed, watched or not.
   The first replicate's data is written to ``out/synthetic/REGIME`` as parquet (all variants,
   with a provenance column) and RecBole atomic files (one folder per variant).
4. **Models**: every recommender is fitted on real only, real + simulated and real + each
   baseline (early stopping on the real validation items only), and ranks every item for
   the real test item (items the user had in its training part, synthetic ones included, are
   excluded; a sequential model reads them in time order, the validation item last).
5. **Statistics**: NDCG@10 and Recall@10 per user, averaged over the `seeds` replicates; each
   augmentation against real only (and simulated against each naive baseline) with a paired
   bootstrap interval over users and a t interval over the replicates' means. A gain is
   claimed only when both intervals are above zero.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from recarena.agents.user_kinds import user_kind_needs_llm
from recarena.recommenders import (
    RecommenderError,
    build_recommender,
    recommender_class,
)
from recarena.simulator.data import Dataset, load_dataset
from recarena.simulator.data.formats import write_atomic
from recarena.simulator.data.splits import Split, leave_one_out
from recarena.simulator.data.streams import AUGMENT_REPLICATE
from tqdm.auto import tqdm

from recarena.scenarios.augment import data as ad
from recarena.scenarios.augment.stats import summarise
from recarena.scenarios.config import UserKindOptions, option, parse_model_params
from recarena.scenarios.contract import Scenario, ScenarioError, check_out_folder, where_written, write_results

REGIMES = ("sparse", "full")
# Modest training so that the default run takes minutes on two CPU cores (override with --model-params).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "bpr": {"epochs": 40, "patience": 5},
    "lightgcn": {"epochs": 40, "patience": 5},
    "sasrec": {"epochs": 6, "patience": 3, "dim": 32, "layers": 1, "inner_dim": 64, "negatives": 256, "max_len": 25},
}


@dataclass
class AugmentConfig(UserKindOptions):
    """What `recarena augment` (and `recarena run` with ``kind: augment``) runs."""

    recommenders: str = option("bpr,lightgcn,sasrec", "comma-separated recommenders trained on real and on real + synthetic data (registry names)")
    model_params: list[str] = option([], "hyper-parameters as MODEL.name=value, e.g. sasrec.epochs=10 bpr.dim=32")
    regimes: str = option("sparse,full", "training regimes: sparse (each user's first sparse-min..sparse-max interactions) and/or full")
    sparse_min: int = option(5, "sparse regime: fewest training interactions kept per user")
    sparse_max: int = option(20, "sparse regime: most training interactions kept per user")
    calibration_users: int = option(20, "users whose last two training interactions calibrate the hybrid users' blend")
    browse: str = option("pop", "where the simulated users' pages come from: a recommender fitted on the training part "
                                "(pop, itemknn, bpr, ...) or random (a uniform candidate pool)")
    preference_epochs: int = option(100, "full-batch steps fitting the users' preference model (fewer: faster, rougher users)")
    users: int = option(0, "users who get synthetic interactions, drawn with the seed (0: every user)")
    sessions: int = option(2, "sessions per simulated user")
    pages: int = option(5, "most pages per session")
    slate_size: int = option(10, "items per page")
    ratio: float = option(1.0, "most synthetic interactions per real training interaction of the same user")
    baselines: str = option("popularity,random", "naive augmentations at the simulated volume per user: popularity, random, "
                                                 "shown (the pages' items, watched or not: the page source without the users)")
    seeds: int = option(3, "replicates: each simulates the users anew and refits every model with its own seed")
    bootstrap: int = option(2000, "bootstrap resamples for the intervals over users")
    level: float = option(0.95, "confidence level of the intervals")
    out: Path = option(Path("runs/augment"), "output folder: results.json, report.html, synthetic/")
    export: bool = option(True, "write the first replicate's synthetic data (parquet + RecBole atomic files) under out/synthetic")

    def recommender_names(self) -> list[str]:
        return [name.strip() for name in self.recommenders.split(",") if name.strip()]

    def regime_names(self) -> list[str]:
        return [name.strip() for name in self.regimes.split(",") if name.strip()]

    def variants(self) -> tuple[str, ...]:
        """Real only, real + simulated, then real + each naive baseline."""
        return (ad.REAL, ad.SIMULATED, *[name.strip() for name in self.baselines.split(",") if name.strip()])

    def validate(self) -> None:
        check_out_folder(self.out)
        names = self.recommender_names()
        if not names:
            raise ScenarioError("recommenders: name at least one recommender")
        for field_name, values in (("recommenders", names), ("browse", [self.browse])):
            for name in values:
                try:
                    recommender_class(name)
                except RecommenderError as error:
                    raise ScenarioError(f"{field_name}: {error}") from None
        if len(set(names)) != len(names):
            raise ScenarioError(f"recommenders: a recommender is named twice in {self.recommenders!r}")
        regimes = self.regime_names()
        if not regimes or any(r not in REGIMES for r in regimes) or len(set(regimes)) != len(regimes):
            raise ScenarioError(f"regimes: expected a comma-separated subset of {', '.join(REGIMES)}, got {self.regimes!r}")
        naive = self.variants()[2:]
        if any(b not in ad.BASELINES for b in naive) or len(set(naive)) != len(naive):
            raise ScenarioError(f"baselines: expected a comma-separated subset of {', '.join(ad.BASELINES)}, got {self.baselines!r}")
        for name, value, low in (("sparse_min", self.sparse_min, 1), ("sessions", self.sessions, 1), ("pages", self.pages, 1),
                                 ("slate_size", self.slate_size, 1), ("seeds", self.seeds, 1), ("bootstrap", self.bootstrap, 100),
                                 ("users", self.users, 0), ("calibration_users", self.calibration_users, 1), ("threads", self.threads, 1),
                                 ("preference_epochs", self.preference_epochs, 1)):  # fmt: skip
            if value < low:
                raise ScenarioError(f"{name}: must be at least {low}, got {value}")
        if self.sparse_max < self.sparse_min:
            raise ScenarioError(f"sparse_max: must be at least sparse_min ({self.sparse_min}), got {self.sparse_max}")
        if not (0.0 < self.ratio <= 10.0) or not math.isfinite(self.ratio):
            raise ScenarioError(f"ratio: synthetic interactions per real one must be in (0, 10], got {self.ratio}")
        if not 0.5 <= self.level < 1.0:
            raise ScenarioError(f"level: must be in [0.5, 1), got {self.level}")
        self.params()

    def params(self) -> dict[str, dict[str, Any]]:
        """Each recommender's parameters: the modest defaults, then --model-params (validated here)."""
        out = {name: {"progress": False, **DEFAULT_PARAMS.get(name, {})} for name in self.recommender_names()}
        for model, values in parse_model_params(self.model_params, self.recommender_names()).items():
            out[model].update(values)
        for name, values in out.items():
            try:
                build_recommender(name, values)
            except RecommenderError as error:
                raise ScenarioError(f"model_params: {error}") from None
        return out

    def recorded(self) -> dict[str, Any]:
        skip = {"progress", "html", "threads", "out", "llm_cache", "max_llm_failure_rate", "export"}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}


def replicate_seed(config: AugmentConfig, regime: str, rep: int, salt: int = 0) -> np.random.SeedSequence:
    return AUGMENT_REPLICATE.sequence(config.seed, regime=REGIMES.index(regime), replicate=rep, salt=salt)


def int_seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1)[0] % (2**31 - 1))


def training_part(config: AugmentConfig, split: Split, regime: str) -> pd.DataFrame:
    """The regime's real training interactions (the sparse cut is drawn once per run, with the seed)."""
    if regime == "full":
        return split.train
    rng = np.random.default_rng(replicate_seed(config, regime, 0, 1))
    return ad.sparsify(split.train, config.sparse_min, config.sparse_max, rng)


def make_users(config: AugmentConfig, train: Dataset, seed: int, llm: Any, progress: bool):
    """The users' factory, built on `train` only (see the module docstring, step 2)."""
    from recarena.agents.kit import build_user_kit
    from recarena.agents.preferences import PreferenceConfig

    kit = build_user_kit(train, seed=seed, preference_config=PreferenceConfig(seed=seed, epochs=config.preference_epochs))
    # The last two training interactions of each user stand in for validation (dynamics, the hybrid blend); the
    # calibration kit never sees them. No real held-out interaction is in `train`, so none can reach a user model.
    inner = leave_one_out(train)
    calibration = dataclasses.replace(inner, valid=pd.concat([inner.valid, inner.test], ignore_index=True), test=inner.test.iloc[:0])
    calibration_kit = None
    if config.user_model == "dynamic" or config.user_kind == "hybrid":
        calibration_kit = build_user_kit(calibration.train_dataset(), seed=seed, validation=calibration.valid if config.user_model == "dynamic" else None,
                                         preference_config=PreferenceConfig(seed=seed, epochs=config.preference_epochs))  # fmt: skip
    if config.user_model == "dynamic":
        from recarena.agents.dynamics import carry_over

        # Weights fitted on the inner split, tables rebuilt on the whole training part the users know.
        kit.behaviour.dynamics = carry_over(calibration_kit.behaviour.dynamics, train, kit.preferences)
        kit.dynamics_report = calibration_kit.dynamics_report
    if config.user_kind != "hybrid":
        return kit.factory(config.user_kind, llm)
    from recarena.agents.calibration import calibrate_on_validation

    blend = calibrate_on_validation(calibration_kit, calibration, llm, n_users=config.calibration_users, positives_per_user=2,
                                    seed=seed, progress=progress)  # fmt: skip
    return kit.factory("hybrid", llm, blend)


def synthesize(config: AugmentConfig, train: Dataset, make_user: Any, regime: str, rep: int, llm: Any, bar: Any) -> dict[str, pd.DataFrame]:
    """The synthetic frames of one regime and replicate (simulated and the chosen baselines), at equal volume per user."""
    rep_seed = int_seed(replicate_seed(config, regime, rep, 2))
    counts = np.bincount(train.interactions["user"].to_numpy(), minlength=train.n_users)
    users = np.flatnonzero(counts > 0)
    if config.users:
        rng = np.random.default_rng(replicate_seed(config, regime, rep, 3))
        users = np.sort(rng.choice(users, size=min(config.users, len(users)), replace=False))
    browse = build_recommender(config.browse, {"seed": rep_seed, "progress": False})
    browse.fit(train)  # no validation: held-out items never reach the page source
    cap = np.ceil(config.ratio * counts).astype(np.int64)
    simulated, shown = ad.simulate_interactions(make_user, browse, train, users, sessions=config.sessions, pages=config.pages,
                                         slate_size=config.slate_size, cap=cap, seed=rep_seed, llm=llm, threads=config.threads,
                                         progress=bar)  # fmt: skip
    per_user = simulated.groupby("user").size()
    naive_rng = np.random.default_rng(replicate_seed(config, regime, rep, 4))
    out = {ad.SIMULATED: simulated}
    for baseline in config.variants()[2:]:
        out[baseline] = shown if baseline == ad.SHOWN else ad.naive_interactions(baseline, per_user, train, naive_rng)
    return out


def export_synthetic(dataset: Dataset, train: pd.DataFrame, synthetic: dict[str, pd.DataFrame], folder: Path) -> dict[str, str]:
    """Parquet of the real training rows and every synthetic variant (provenance column), and atomic files per variant."""
    folder.mkdir(parents=True, exist_ok=True)
    real = ad.with_provenance(train, ad.REAL)
    frames = [real, *synthetic.values()]
    everything = pd.concat(frames, ignore_index=True)
    everything.to_parquet(folder / "interactions.parquet", index=False)
    files = {"parquet": str(folder / "interactions.parquet")}
    for variant, frame in synthetic.items():
        name = f"{dataset.name}-real+{variant}"
        augmented = pd.concat([real, frame], ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
        files[variant] = str(write_atomic(dataset, folder / name, name, interactions=augmented, extra_columns=(ad.PROVENANCE,)))
    return files


def run_augment(config: AugmentConfig) -> dict[str, Any]:
    """Run the augmentation experiment of `config` into ``config.out``; returns the results (also in results.json)."""
    config.validate()
    started = time.perf_counter()
    params = config.params()
    dataset = load_dataset(config.dataset)
    split = leave_one_out(dataset)
    llm = None
    if user_kind_needs_llm(config.user_kind):
        from recarena.agents.llm import build_llm

        llm = build_llm(config.llm, config.llm_cache, max_failure_rate=config.max_llm_failure_rate)
    regimes, names, variants = config.regime_names(), config.recommender_names(), config.variants()
    bar = tqdm(total=len(regimes) * config.seeds * len(names) * len(variants), desc="augment: fits", disable=not config.progress)
    metrics: dict[tuple[str, str, str], list[pd.DataFrame]] = {}
    volumes: dict[str, list[dict[str, Any]]] = {r: [] for r in regimes}
    timings: dict[str, float] = {"simulation": 0.0, "fits": 0.0}
    files: dict[str, dict[str, str]] = {}
    for regime in regimes:
        train = training_part(config, split, regime)
        train_dataset = dataset.with_interactions(train, name=f"{dataset.name}[{regime} train]")
        t0 = time.perf_counter()
        bar.set_postfix_str(f"{regime}: building the users")
        make_user = make_users(config, train_dataset, int_seed(replicate_seed(config, regime, 0, 6)), llm, config.progress)
        timings["simulation"] += time.perf_counter() - t0
        for rep in range(config.seeds):
            t0 = time.perf_counter()
            bar.set_postfix_str(f"{regime} #{rep}: simulating")
            synthetic = synthesize(config, train_dataset, make_user, regime, rep, llm, None)
            timings["simulation"] += time.perf_counter() - t0
            volumes[regime].append({"train": len(train), "users": int(train["user"].nunique()),
                                    **{v: len(f) for v, f in synthetic.items()},
                                    "simulated_users": int(synthetic[ad.SIMULATED]["user"].nunique())})  # fmt: skip
            if config.export and rep == 0:
                files[regime] = export_synthetic(dataset, train, synthetic, Path(config.out) / "synthetic" / regime)
            for name in names:
                for variant in variants:
                    bar.set_postfix_str(f"{regime} #{rep}: {name} on {variant}")
                    t1 = time.perf_counter()
                    augmented = ad.augmented_split(split, train, synthetic.get(variant))
                    model = build_recommender(name, {**params[name], "seed": int_seed(replicate_seed(config, regime, rep, 5))})
                    model.fit(augmented.train_dataset(), valid=augmented.valid)
                    metrics.setdefault((regime, name, variant), []).append(ad.per_user_metrics(model, augmented, "test", 10))
                    timings["fits"] += time.perf_counter() - t1
                    bar.update(1)
    bar.close()
    results = summarise(metrics, volumes, variants, regimes=regimes, recommenders=names, seed=config.seed, bootstrap=config.bootstrap,
                        level=config.level, seeds=config.seeds)  # fmt: skip
    results["run"] = {"directory": str(config.out), "synthetic_files": files}
    results["config"] = config.recorded()
    results["timings"] = {**timings, "total": time.perf_counter() - started}
    results["results_file"] = str(write_results(results, config.out))
    if config.html:
        from recarena.scenarios.augment.report import write_report

        results["report"] = str(write_report(results, Path(config.out) / "report.html"))
    return results


class AugmentScenario(Scenario[AugmentConfig]):
    """Augmentation: simulated users' watches become synthetic interactions; each recommender is trained on real only
    and on real + synthetic (and, at the same volume, real + popularity-sampled and real + random interactions) and
    evaluated on the untouched real test items, in a sparse and the full training regime, with intervals over users
    and replicates; results.json, report.html and the synthetic data in --out."""

    name = "augment"
    help = "do simulated interactions make a real recommender better? (real vs real + synthetic, against naive augmentation)"
    config_type = AugmentConfig

    def run(self, config: AugmentConfig) -> dict[str, Any]:
        return run_augment(config)

    def summary(self, results: dict[str, Any]) -> str:
        from recarena.scenarios.augment.report import format_summary

        return format_summary(results) + "\n" + where_written(results)


__all__ = ["AugmentConfig", "AugmentScenario", "run_augment"]
