"""`recarena fidelity`: how human are our simulated users?

    results = FidelityScenario().run(FidelityScenarioConfig(user_kinds=["statistical", "hybrid"], out=Path("runs/fid")))

1. **World**: the dataset is split per user at random (`valid_fraction`, `test_fraction`).
   The users' kit (profiles, preference model), every item statistic, the popularity
   threshold and the rating predictors come from the training part; thresholds, the
   biased MF's L2 and the hybrid users' blend are tuned on the validation part; every
   figure is measured on the test part (`recarena.agents.fidelity`).
2. **Users**: `users` held-out users for the statistical kind; the LLM kinds (`llm`, `hybrid`,
   once per backend in `llm`) on the first `llm_users` of them, where the statistical user is
   scored again so every kind has a like-for-like row. Same users, same pages, same baselines.
3. **Measures**: taste discrimination at every ratio (interacted and liked), rating
   alignment, behaviour shape from `sessions` sessions against `recommender`
   (`recarena.agents.fidelity_shape`), and for each LLM backend the persona self-consistency.
4. **Output**: ``results.json`` (with the winner of every measure), ``report.html``, a summary.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recarena.agents.fidelity import FidelityConfig, build_reference, fidelity_report, sample_users
from recarena.agents.fidelity_shape import behaviour_shape
from recarena.agents.kit import UserKit, build_user_kit
from recarena.recommenders import Recommender, RecommenderError, build_recommender, recommender_class, recommender_names
from recarena.recommenders.base import torch_threads
from recarena.simulator.data import Dataset, load_dataset
from recarena.simulator.data.splits import Split, random_holdout
from recarena.simulator.arm_sessions import Twins, records_to_frames, simulate_arm
from recarena.simulator.data.streams import FIDELITY_ORDER, FIDELITY_USER

from recarena.scenarios.config import SimulatedUserOptions, option
from recarena.scenarios.contract import Scenario, ScenarioError, check_llm_training_data, check_out_folder, where_written, write_results
from recarena.scenarios.fidelity.report import format_summary, persona_chance_rate, winners

USER_KINDS = ("statistical", "llm", "hybrid")


@dataclass
class FidelityScenarioConfig(SimulatedUserOptions):
    """What `recarena fidelity` (and `recarena run x.yaml` with ``kind: fidelity``) runs."""

    user_kinds: list[str] = option(["statistical", "hybrid"], "simulated user kinds to check: statistical, llm, hybrid")
    llm: list[str] = option(["embedded"], "LLM backends for the llm/hybrid kinds, each checked: 'embedded' or 'openai:MODEL@BASE_URL'")
    llm_threads: int | None = option(None, "CPU threads of the embedded LLM (default: the backend's own; 1 is best on a busy machine)")
    users: int = option(200, "held-out users checked for the statistical kind and the baselines")
    llm_users: int = option(20, "of those, users checked for the llm and hybrid kinds (the statistical user is scored on them too)")
    ratios: list[int] = option([1, 2, 3, 9], "negatives per held-out positive on the taste pages (1:r)")
    liked_rating: float = option(4.0, "held-out ratings at or above this count as liked (the strict variant)")
    max_positives: int = option(5, "held-out items per user on a taste page, at most")
    max_ratings: int = option(10, "held-out ratings per user for rating alignment, at most")
    rating_alignment: bool = option(True, "check ratings against held-out ones (needs a dataset with ratings)")
    valid_fraction: float = option(0.1, "share of each user's interactions for validation (thresholds, hybrid calibration)")
    test_fraction: float = option(0.1, "share of each user's interactions held out for the checks")
    calibration_users: int = option(30, "users whose validation items calibrate the hybrid users' blend")
    tuned_threshold: bool = option(True, "also score each simulated user deciding by a threshold on its own probabilities tuned on validation")
    recommender: str = option("pop", f"recommender whose pages the behaviour-shape sessions show ({', '.join(recommender_names())})")
    sessions: int = option(2, "behaviour-shape sessions per user (0: skip the behaviour shape)")
    pages: int = option(10, "most pages per behaviour-shape session")
    slate_size: int = option(10, "items per page")
    session_gap_minutes: float = option(30.0, "real sessions in the training data are cut at gaps longer than this")
    persona_users: int = option(10, "users whose persona each LLM backend infers repeatedly, for self-consistency (0: skip)")
    persona_samples: int = option(3, "persona answers per user (different seeds) for self-consistency")
    bootstrap: int = option(1000, "bootstrap resamples of users for the 95 percent intervals")
    out: Path = option(Path("runs/fidelity"), "output folder: results.json and report.html")

    def llm_kinds(self) -> list[str]:
        return [k for k in self.user_kinds if k != "statistical"]

    def validate(self) -> None:
        check_out_folder(self.out)
        if not self.user_kinds:
            raise ScenarioError("user_kinds: name at least one of statistical, llm, hybrid")
        for kind in self.user_kinds:
            if kind not in USER_KINDS:
                raise ScenarioError(f"user_kinds: unknown kind {kind!r}; choose from {', '.join(USER_KINDS)}")
        if self.llm_kinds():
            if not self.llm:
                raise ScenarioError("llm: the llm and hybrid kinds need at least one backend ('embedded' or 'openai:MODEL@BASE_URL')")
            from recarena.agents.llm.factory import BACKENDS

            for spec in self.llm:
                if spec.partition(":")[0] not in BACKENDS:
                    raise ScenarioError(f"llm: unknown backend {spec!r}; expected 'embedded' or 'openai:MODEL@BASE_URL'")
        for ratio in self.ratios:
            if ratio < 1:
                raise ScenarioError(f"ratios: 1:{ratio} is impossible; a ratio is a positive whole number of negatives per positive")
        if not self.ratios:
            raise ScenarioError("ratios: give at least one ratio, e.g. 1 2 3 9")
        try:
            recommender_class(self.recommender)
        except RecommenderError as error:
            raise ScenarioError(f"recommender: {error}") from None
        for name, value, low in (("users", self.users, 2), ("llm_users", self.llm_users, 1), ("max_positives", self.max_positives, 1),
                                 ("max_ratings", self.max_ratings, 1), ("calibration_users", self.calibration_users, 2),
                                 ("sessions", self.sessions, 0), ("pages", self.pages, 1), ("slate_size", self.slate_size, 1),
                                 ("persona_users", self.persona_users, 0), ("persona_samples", self.persona_samples, 2),
                                 ("bootstrap", self.bootstrap, 100), ("threads", self.threads, 1)):  # fmt: skip
            if value < low:
                raise ScenarioError(f"{name}: must be at least {low}, got {value}")
        if self.llm_threads is not None and self.llm_threads < 1:
            raise ScenarioError(f"llm_threads: must be at least 1, got {self.llm_threads}")
        if self.llm_kinds() and self.llm_users > self.users:
            raise ScenarioError(f"llm_users: must be at most users ({self.users}), got {self.llm_users}")
        if not 1.0 <= self.liked_rating <= 5.0:
            raise ScenarioError(f"liked_rating: must be on the 1-5 scale, got {self.liked_rating}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ScenarioError(f"test_fraction: must be in (0, 1), got {self.test_fraction}")
        if not 0.0 <= self.valid_fraction < 1.0 - self.test_fraction:
            raise ScenarioError(f"valid_fraction: must be in [0, 1 - test_fraction), got {self.valid_fraction}")
        if "hybrid" in self.user_kinds and self.valid_fraction == 0.0:
            raise ScenarioError("valid_fraction: hybrid users are calibrated on validation data; it must be above 0")
        if self.session_gap_minutes <= 0:
            raise ScenarioError(f"session_gap_minutes: must be positive, got {self.session_gap_minutes}")

    def check_data(self, dataset: Dataset) -> None:
        """The checks that need the data: ratings for rating alignment, enough unseen items for the ratios."""
        if self.rating_alignment and not dataset.has_ratings:
            raise ScenarioError(f"rating_alignment: dataset {dataset.name!r} has no ratings (implicit feedback); set rating_alignment: false")
        typical = int(np.median(np.bincount(dataset.interactions["user"].to_numpy(), minlength=dataset.n_users)))
        if max(self.ratios) > dataset.n_items - typical:
            raise ScenarioError(f"ratios: 1:{max(self.ratios)} is impossible on {dataset.name!r}: its median user leaves only "
                                f"{dataset.n_items - typical} unseen items")  # fmt: skip

    def fidelity(self) -> FidelityConfig:
        return FidelityConfig(ratios=tuple(sorted(set(self.ratios))), positives="interacted", liked_variant=self.rating_alignment,
                              liked_rating=self.liked_rating, max_users=self.users, max_positives=self.max_positives,
                              max_ratings=self.max_ratings, bootstrap=self.bootstrap, tuned_user=self.tuned_threshold,
                              seed=self.seed, progress=self.progress)  # fmt: skip


@dataclass
class FidelityWorld:
    """Fitted once: data, split, users' kit, reference statistics, the sessions' recommender, the LLMs."""

    dataset: Dataset
    split: Split
    kit: UserKit
    reference: Any
    recommender: Recommender | None
    llms: dict[str, Any]


def build_world(config: FidelityScenarioConfig, dataset: Dataset | None = None, llms: dict[str, Any] | None = None) -> FidelityWorld:
    """Load and split the data, fit everything on the training part; `dataset`/`llms` replace loading (tests)."""
    dataset = dataset if dataset is not None else load_dataset(config.dataset)
    config.check_data(dataset)
    split = random_holdout(dataset, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction, seed=config.seed)
    train = split.train_dataset()
    if config.llm_kinds():
        check_llm_training_data(config.llm, train)
    with torch_threads(1):  # the preference model's small dense blocks: one thread is fastest, and never stalls on a busy machine
        validation = split.valid if config.user_model == "dynamic" and len(split.valid) else None
        kit = build_user_kit(train, seed=config.seed, validation=validation)
    reference = build_reference(split, config.fidelity(), rating_baselines=config.rating_alignment)
    recommender = None
    if config.sessions > 0:
        recommender = build_recommender(config.recommender, {"seed": config.seed})
        recommender.fit(train, valid=split.valid if len(split.valid) else None)
    if llms is None and config.llm_kinds():
        from recarena.agents.llm import build_llm

        llms = {spec: build_llm(spec, config.llm_cache, n_threads=config.llm_threads,
                                    max_failure_rate=config.max_llm_failure_rate) for spec in config.llm}
    return FidelityWorld(dataset, split, kit, reference, recommender, llms or {})


def _sessions(config: FidelityScenarioConfig, world: FidelityWorld, make_user, users: np.ndarray, llm: Any) -> dict | None:
    """`config.sessions` sessions per user against the recommender, each from the user's starting snapshot."""
    if config.sessions == 0 or len(users) == 0:
        return None
    twins = Twins(make_user, users.tolist(), config.seed)
    records = []
    for session in range(config.sessions):
        records += simulate_arm("fidelity", f"session{session}", session, world.recommender, twins, users.tolist(), seed=config.seed,
                                pages=config.pages, slate_size=config.slate_size, llm=llm, threads=config.threads).records  # fmt: skip
    impressions, sessions = records_to_frames(records)
    tiers = [p.activity_tier for p in world.kit.profiles]
    primary = world.reference.variants[0]
    threshold = world.reference.popularity_thresholds[(primary, min(config.ratios))]
    return behaviour_shape(impressions, sessions, users, tiers, world.split.test, world.split.train, world.dataset,
                           world.reference.popularity, threshold, max_pages=config.pages,
                           gap_seconds=config.session_gap_minutes * 60, seed=config.seed)  # fmt: skip


def _persona(config: FidelityScenarioConfig, world: FidelityWorld, llm: Any, users: np.ndarray) -> dict:
    from recarena.agents.persona import enrich_profiles

    chosen = users[: config.persona_users]
    # Copies: the evaluated users keep the profiles they were checked with.
    profiles = [copy.deepcopy(world.kit.profiles[int(u)]) for u in chosen]
    report = enrich_profiles(profiles, llm, n_samples=config.persona_samples, seed=config.seed)
    return {"users": report.users, "self_consistency": report.agreement_rate, "invalid_answers": report.invalid_answers,
            "chance_rate": persona_chance_rate(config.persona_samples)}  # fmt: skip


def evaluate(config: FidelityScenarioConfig, world: FidelityWorld, label: str, kind: str, users: np.ndarray,
             backend: str | None = None, blend: Any = None) -> dict[str, Any]:
    """Every measure for one user kind (and backend) on `users`."""
    started = time.perf_counter()
    llm = world.llms.get(backend) if backend else None
    factory = world.kit.factory(kind, llm, blend)
    make = lambda u: factory(u, FIDELITY_USER.generator(config.seed, user=u))  # noqa: E731
    fidelity = dataclasses.replace(config.fidelity(), progress=False)
    result = {"label": label, "kind": kind, "backend": backend, "n_users": len(users),
              **fidelity_report(make, world.split, fidelity, users=users, reference=world.reference)}  # fmt: skip
    if not config.rating_alignment:
        result.pop("rating", None)
    result["behaviour"] = _sessions(config, world, factory, users, llm)
    result["seconds"] = time.perf_counter() - started
    return result


def run_fidelity(config: FidelityScenarioConfig, *, dataset: Dataset | None = None, llms: dict[str, Any] | None = None,
                 world: FidelityWorld | None = None) -> dict[str, Any]:
    """Run the scenario into ``config.out``; returns the results (also in results.json).

    `dataset` and `llms` replace loading the data and building the LLMs; a `world` from `build_world` replaces both."""
    config.validate()
    started = time.perf_counter()
    world = world or build_world(config, dataset, llms)
    users = sample_users(world.split, config.fidelity(), config.users)
    order = FIDELITY_ORDER.generator(config.seed).permutation(users)
    llm_users = np.sort(order[: config.llm_users])
    plan: list[tuple[str, str, np.ndarray, str | None]] = []
    if "statistical" in config.user_kinds:
        plan.append(("statistical", "statistical", users, None))
        if config.llm_kinds() and len(llm_users) < len(users):
            plan.append((f"statistical ({len(llm_users)} users)", "statistical", llm_users, None))
    for backend in world.llms:
        plan += [(f"{kind} ({backend})", kind, llm_users, backend) for kind in config.llm_kinds()]
    evaluations, blends, personas = [], {}, {}
    for label, kind, chosen, backend in tqdm(plan, desc="fidelity: user kinds", disable=not config.progress):
        blend = None
        if kind == "hybrid":
            if backend not in blends:
                from recarena.agents.calibration import calibrate_on_validation

                blends[backend] = calibrate_on_validation(world.kit, world.split, world.llms[backend], n_users=config.calibration_users,
                                                          positives_per_user=3, seed=config.seed, progress=False)  # fmt: skip
            blend = blends[backend]
        evaluations.append(evaluate(config, world, label, kind, chosen, backend, blend))
        if backend is not None and backend not in personas and config.persona_users > 0:
            personas[backend] = _persona(config, world, world.llms[backend], llm_users)
    results = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items() if k not in ("progress", "html", "threads", "llm_cache", "llm_threads", "max_llm_failure_rate")},
        "dataset": world.dataset.name, "split": world.split.summary(),
        "threshold_source": world.reference.threshold_source,
        "biased_mf_l2": world.reference.biased_mf.l2 if world.reference.biased_mf is not None else None,
        "evaluations": evaluations,
        "persona": personas,
        "blends": {b: {k: v for k, v in dataclasses.asdict(blend).items()} for b, blend in blends.items()},
    }  # fmt: skip
    results["winners"] = winners(results)
    results["run"] = {"seconds": time.perf_counter() - started,
                      "llm_usage": {b: llm.accountant.report()["total"] for b, llm in world.llms.items() if hasattr(llm, "accountant")}}  # fmt: skip
    results["results_file"] = str(write_results(results, config.out))
    if config.html:
        from recarena.scenarios.fidelity.report import write_report

        results["report"] = str(write_report(results, config.out / "report.html"))
    return results


class FidelityScenario(Scenario[FidelityScenarioConfig]):
    """How human are the simulated users? On held-out real behaviour: taste discrimination at 1:r (Agent4Rec's protocol,
    interacted and liked), rating alignment, behaviour shape and persona self-consistency, for every user kind and LLM
    backend, beside a random user, the popularity-threshold user, item-mean and biased-MF predictors; the winner of
    every measure is named."""

    name = "fidelity"
    help = "how human are the simulated users: held-out taste, ratings and behaviour against cheap baselines"
    config_type = FidelityScenarioConfig

    def run(self, config: FidelityScenarioConfig) -> dict[str, Any]:
        return run_fidelity(config)

    def summary(self, results: dict[str, Any]) -> str:
        return format_summary(results) + "\n" + where_written(results)
