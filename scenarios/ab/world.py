"""The world an A/B test (and the feedback loop) runs in: data, split, fitted models, users' kit, LLM and blend.

    world = build_world(ABConfig(arms="pop,bpr").world_spec(), models_dir=Path("runs/ab/models"))

`WorldSpec` is what building the world reads, and nothing else: a scenario's config gives one
(`ABConfig.world_spec`, `FeedbackConfig.world_spec`), so the world never sees a whole config.

1. The dataset is split leave-one-out by time (or, for the agreement check, by a global cut in time).
2. Every model is fitted once on the training part (early stopping on the validation part), or
   loaded from ``models_dir`` when a previous run saved it there. A served arm (its "model" a URL) is an
   `HttpRecommender`: fitting it checks the service and keeps the histories it will send; nothing is saved.
3. The users' kit (profiles, preference model) is built on the same training part; with
   ``user_model="dynamic"`` their dynamics of interest are fitted on the validation part.
4. LLM and hybrid users get the LLM (`recarena.agents.llm.build_llm`); hybrid users' blend is
   calibrated on the validation items of `calibration_users` users
   (`recarena.agents.calibration.calibrate_on_validation`): the test items never reach a user model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from recarena.agents.kit import UserKind, UserKit, UserModel, build_user_kit
from recarena.agents.llm.health import DEFAULT_MAX_FAILURE_RATE
from recarena.agents.user_kinds import user_kind_needs_llm
from recarena.recommenders import Recommender, build_recommender
from recarena.recommenders.service import HttpRecommender, is_service_url, probe_service
from recarena.simulator.data import Dataset, load_dataset
from recarena.simulator.data.splits import Split, leave_one_out, temporal_split

from recarena.scenarios.contract import check_llm_training_data


@dataclass(frozen=True)
class WorldSpec:
    """What `build_world` needs to know."""

    dataset: str
    models: tuple[str, ...]
    """The distinct registry names to fit, in order."""
    model_params: dict[str, dict[str, Any]]
    """Hyper-parameters per model (`recarena.scenarios.config.parse_model_params`)."""
    user_kind: UserKind
    user_model: UserModel
    """``dynamic``: the users' dynamics are fitted on the split's validation part; ``static``: taste alone."""
    llm: str
    llm_cache: Path | None
    calibration_users: int
    seed: int
    progress: bool
    """Training bars of the models and the calibration's bar."""
    split: Literal["loo", "temporal"] = "loo"
    """Leave-one-out by time, or a global cut in time (`temporal_split`) holding out `test_fraction`."""
    test_fraction: float = 0.2
    """The temporal split's test share (its validation part is the 10% of interactions before the test part)."""
    max_llm_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    """The LLM's health rule (`recarena.agents.llm.HealthRule`): more fallbacks than this share stop the run."""


@dataclass
class World:
    """Everything fitted once: data, split, users' kit, the arms' recommenders, the LLM and blend."""

    dataset: Dataset
    split: Split
    kit: UserKit
    recommenders: dict[str, Recommender]
    fit_seconds: dict[str, float] = field(default_factory=dict)
    llm: Any = None
    blend: Any = None

    def user_factory(self, kind: UserKind) -> Callable[..., Any]:
        """The maker of `kind` users in this world (`UserKit.factory` with the world's LLM and blend)."""
        return self.kit.factory(kind, self.llm, self.blend)


def build_world_llm(spec: WorldSpec) -> Any:
    """The LLM the world's users need (None for statistical users), its endpoint already checked.

    Built apart so that a run can build it before it writes anything: an endpoint that does not
    answer is an `LLMHealthError` before a run directory exists."""
    if not user_kind_needs_llm(spec.user_kind):
        return None
    from recarena.agents.llm import build_llm

    return build_llm(spec.llm, spec.llm_cache, max_failure_rate=spec.max_llm_failure_rate)


def probe_served_arms(spec: WorldSpec) -> None:
    """A one-line RecommenderError when a served arm's service does not answer its health check (docs/service.md).

    Called before a run writes anything, like `build_world_llm`; building the world checks again, and the data's size."""
    for model in spec.models:
        if is_service_url(model):
            probe_service(model, float(spec.model_params.get(model, {}).get("timeout_s", 10.0)))


def build_world(spec: WorldSpec, models_dir: Path | None = None, llm: Any = None) -> World:
    """Load the data, fit (or load) each model once, build the users' kit, and the LLM when needed
    (`llm`: one `build_world_llm` already built for `spec`)."""
    dataset = load_dataset(spec.dataset)
    split = leave_one_out(dataset) if spec.split == "loo" else temporal_split(dataset, valid_fraction=0.1, test_fraction=spec.test_fraction)
    train = split.train_dataset()
    recommenders, seconds = {}, {}
    for model in spec.models:
        settings = {"seed": spec.seed, "progress": spec.progress, **spec.model_params.get(model, {})}
        served = is_service_url(model)  # a recommender service: nothing to train or save, its histories kept to send
        built = HttpRecommender(url=model, **settings) if served else build_recommender(model, settings)  # bad params fail before training
        path = models_dir / model if models_dir is not None and not served else None
        started = time.perf_counter()
        if path is not None and (path / "recommender.json").exists():
            built = Recommender.load(path)
        else:
            built.fit(train, valid=split.valid)
            if path is not None:
                built.save(path)
        recommenders[model], seconds[model] = built, time.perf_counter() - started
    if user_kind_needs_llm(spec.user_kind):
        check_llm_training_data([spec.llm], split.train_dataset())
    kit = build_user_kit(train, seed=spec.seed, validation=split.valid if spec.user_model == "dynamic" else None)
    world = World(dataset, split, kit, recommenders, seconds)
    if user_kind_needs_llm(spec.user_kind):
        from recarena.agents.calibration import calibrate_on_validation

        world.llm = llm if llm is not None else build_world_llm(spec)
        if spec.user_kind == "hybrid":
            world.blend = calibrate_on_validation(kit, split, world.llm, n_users=spec.calibration_users, positives_per_user=2,
                                                  seed=spec.seed, progress=spec.progress)  # fmt: skip
    return world
