"""`UserKit`: everything fitted once per dataset from which users of any kind are made.

Build it from the history the users may know (for fidelity checks, a split's
training part; for simulation, the full real history)::

    kit = build_user_kit(split.train_dataset(), seed=0, validation=split.valid)
    user = kit.statistical_user(42, np.random.default_rng(0))
    make_user = kit.factory("hybrid", llm, blend)   # any kind, as scenarios ask for it

Given `validation` (held-out next interactions after the history; never the part you will
evaluate on), the users get dynamics of interest (dynamics.py: recent items and popularity
on top of the static taste), fitted on it; `kit.dynamics_report` lists the variants tried
and the one chosen by held-out validation likelihood. Without it, the users' taste is static.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset

from .dynamics import DynamicsConfig, DynamicsReport, fit_dynamics
from .language_user import LLM_ONLY, Blend, LanguageUser
from .preference_cache import fitted_preferences
from .preferences import PreferenceConfig, PreferenceModel
from .profile import ProfileConfig, UserProfile, build_profiles, item_descriptions
from .statistical import BehaviourConfig, StatisticalBehaviour, StatisticalUser, activity_tier_array
from .user_kinds import PluginUserMaker, UserKindError, user_kind_maker, user_kind_needs_llm

# The kinds of simulated user a scenario can ask the kit for: statistical, llm, hybrid, or a plugin's
# (a registered name, see user_kinds.py: `user_kind_names()`).
UserKind = str
# The users' interest: moved by recent items and popularity (fitted on validation data), or a static taste.
UserModel = Literal["dynamic", "static"]


@dataclass
class UserKit:
    """Profiles, the preference model and the statistical rules for one dataset."""

    history: Dataset
    profiles: list[UserProfile]
    preferences: PreferenceModel
    behaviour: StatisticalBehaviour
    dynamics_report: DynamicsReport | None = None
    """The dynamics variants tried on validation data and the one chosen (None: static users)."""
    profile_config: ProfileConfig = ProfileConfig()
    """How the profiles were computed and how items are described to the LLM (`item_descriptions`)."""

    def __post_init__(self) -> None:
        # Read once: users are built by the thousand.
        self.item_genres: list[list[str]] = self.history.items["genres"].tolist()
        self.item_texts: list[str] = item_descriptions(self.history, self.profile_config)

    def static(self) -> "UserKit":
        """This kit's users without their dynamics (the static taste alone), sharing everything else: for comparing the
        two user models in one run."""
        b = self.behaviour
        return UserKit(self.history, self.profiles, self.preferences, StatisticalBehaviour(b.preferences, b.activity_tiers, b.config),
                       profile_config=self.profile_config)  # fmt: skip

    def statistical_user(self, user: int, rng: np.random.Generator) -> StatisticalUser:
        return StatisticalUser(self.profiles[user], self.behaviour, rng, self.item_genres)

    def llm_user(self, user: int, rng: np.random.Generator, llm: Any, memory: Any = None) -> LanguageUser:
        """A user whose every decision is the LLM's (see `language_user.py`)."""
        return self._language_user(user, rng, llm, LLM_ONLY, memory)

    def hybrid_user(self, user: int, rng: np.random.Generator, llm: Any, blend: Blend, memory: Any = None) -> LanguageUser:
        """A user pooling the LLM and the preference model with a calibrated `blend` (see `calibration.py`)."""
        return self._language_user(user, rng, llm, blend, memory)

    def factory(self, kind: UserKind, llm: Any = None, blend: Blend | None = None) -> Callable[[int, np.random.Generator], Any]:
        """The user maker of `kind`: ``make(user_id, rng)`` gives a statistical, LLM, hybrid or plugin user.

        LLM and hybrid users need `llm`; hybrid users also a calibrated `blend` (`calibration.calibrate_on_validation`).
        A plugin kind's maker (user_kinds.py) gets this kit and `llm`. The makers are picklable (partials of this
        kit's methods), so they travel to parallel workers. An unknown or broken kind is a `UserKindError`."""
        if kind == "statistical":
            return self.statistical_user
        maker = user_kind_maker(kind)
        if maker is not None:
            if llm is None and user_kind_needs_llm(kind):
                raise UserKindError(f"{kind} users need an LLM")
            return PluginUserMaker(maker, self, llm)
        if llm is None:
            raise UserKindError(f"{kind} users need an LLM")
        if kind == "llm":
            return partial(self.llm_user, llm=llm)
        if blend is None:
            raise UserKindError("hybrid users need a calibrated blend (see recarena.agents.calibration)")
        return partial(self.hybrid_user, llm=llm, blend=blend)

    def _language_user(self, user, rng, llm, blend, memory) -> LanguageUser:
        return LanguageUser(self.profiles[user], self.behaviour, rng, self.item_texts, llm, blend, memory, self.item_genres)


def build_user_kit(
    history: Dataset,
    *,
    seed: int = 0,
    profile_config: ProfileConfig = ProfileConfig(),
    preference_config: PreferenceConfig | None = None,
    behaviour_config: BehaviourConfig = BehaviourConfig(),
    validation: pd.DataFrame | None = None,
    dynamics_config: DynamicsConfig | None = None,
) -> UserKit:
    """Compute profiles and fit the preference model on `history` (seconds for ml-100k, once per machine: the fit is
    cached on disk, see `preference_cache`); with `validation`
    (interactions after `history`), fit the users' dynamics on it too (see the module docstring)."""
    preference_config = preference_config or PreferenceConfig(seed=seed)
    profiles = build_profiles(history, profile_config)
    preferences = fitted_preferences(history, preference_config)  # fitted once per machine for the same data
    dynamics, report = None, None
    if validation is not None:
        dynamics, report = fit_dynamics(history, validation, preferences, dynamics_config or DynamicsConfig(seed=seed))
    behaviour = StatisticalBehaviour(preferences, activity_tier_array(profiles), behaviour_config, dynamics)
    return UserKit(history, profiles, preferences, behaviour, report, profile_config)
