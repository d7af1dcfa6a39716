"""Labelled examples for tuning the users' LLM: the prompts an LLM user sends, with the real answers.

Built from a **training** dataset only (`build_examples` takes a `Dataset`, never a `Split`; the
`tune-llm` scenario passes ``split.train_dataset()``), so no validation or test interaction can
reach an example. For each sampled user with enough training history:

* the user's last ``targets`` training interactions are the *targets*; everything before them is
  the user's *history*;
* the profile is computed by the users' own `build_profiles` on the history (the targets removed
  from every sampled user), so a target never appears in the profile that asks about it, exactly as
  a held-out item never appears in a simulated user's profile;
* each target gives a **watch** question labelled ``Yes`` (a real next item) and, when the data has
  ratings, a **rate** question labelled with the real rating ("1".."5");
* each target also gives ``negatives`` watch questions labelled ``No``, on items drawn uniformly
  from those the user never interacted with in the training data.

The messages are rendered by the very templates and profile text the LLM user uses
(`recarena.agents.prompts.template`, `UserProfile.describe`, `item_descriptions` of the training part), in the shape of
`LanguageUser._llm_watch` / `_llm_ratings` (a system turn, then one question); a test holds the two
equal. The watch question's page and position are drawn uniformly in ``1..pages`` and
``1..positions``. All draws come from the named streams `TUNE_USERS` and `TUNE_EXAMPLES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset
from recarena.simulator.data.dataset import per_user
from recarena.simulator.data.streams import TUNE_EXAMPLES, TUNE_USERS

from ..language_user import STARS, YES_NO
from ..profile import ProfileConfig, build_profiles, item_descriptions, item_text_version, profile_text_digest
from ..prompts import template

QUESTIONS = ("system", "watch", "rate")
"""The prompt templates an example uses (their versions go into the adapter's manifest)."""


@dataclass(frozen=True)
class ExampleConfig:
    """How many examples, and of what kind."""

    users: int = 600
    """Users sampled (those with more than ``min_history`` training interactions); 0: all of them."""
    targets: int = 3
    """Real next items per user (the last training interactions)."""
    negatives: int = 2
    """Items never interacted with, labelled No, per target."""
    min_history: int = 5
    """Training interactions a user keeps before its targets (fewer: the user is not sampled)."""
    pages: int = 3
    """The watch question's page is drawn in 1..pages."""
    positions: int = 10
    """The watch question's position on its page is drawn in 1..positions."""
    ratings: bool = True
    """Also ask the rate question for each target (only when the data has ratings)."""

    def check(self) -> None:
        """ValueError naming the field of a setting out of range."""
        for name, low in (("users", 0), ("targets", 1), ("negatives", 0), ("min_history", 1), ("pages", 1), ("positions", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be at least {low}, got {getattr(self, name)}")


@dataclass(frozen=True)
class Example:
    """One question the LLM user would ask, with the real answer."""

    user: int
    item: int
    question: str
    """``watch`` or ``rate``."""
    messages: tuple[dict[str, str], ...]
    """The chat the LLM user sends: its system turn, then the question."""
    options: tuple[str, ...]
    """What the answer is scored among (`YES_NO` or `STARS`), as `LanguageUser` scores them."""
    answer: str
    """The real answer: one of `options`."""
    timestamp: int | None
    """The target interaction's time (None for a negative: no interaction)."""

    @property
    def label(self) -> int:
        """The answer's index in `options`."""
        return self.options.index(self.answer)


def prompt_versions(profile_config: ProfileConfig = ProfileConfig()) -> dict[str, int | str]:
    """The versions of the templates the examples are rendered with, of the item descriptions in them, and the digest
    of the profile text (`profile_text_digest`)."""
    return {**{name: template(name).version for name in QUESTIONS}, "item": item_text_version(profile_config),
            "profile": profile_text_digest()}  # fmt: skip


def same_prompts(tuned: Any, asked: dict[str, int | str]) -> bool:
    """Whether an adapter whose manifest records the prompt versions `tuned` was tuned on the prompts `asked`.

    Manifests written before the profile text had a digest (the shipped adapter's, until it is made again) have no
    ``profile``: for them the templates and the item text are compared, as they were then."""
    if not isinstance(tuned, dict):
        return False
    return tuned == (asked if "profile" in tuned else {k: v for k, v in asked.items() if k != "profile"})


def system_message(profile_text: str) -> dict[str, str]:
    """The LLM user's system turn (no memories: the users of the scenarios run without a memory)."""
    return {"role": "system", "content": template("system").render(profile=profile_text, memories="")}


def watch_messages(system: dict[str, str], item_text: str, page: int, position: int) -> tuple[dict[str, str], ...]:
    """The watch question as `LanguageUser._llm_watch` asks it (page and position 1-based)."""
    return (system, {"role": "user", "content": template("watch").render(page=page, position=position, item=item_text)})


def rate_messages(system: dict[str, str], item_text: str) -> tuple[dict[str, str], ...]:
    """The rating question as `LanguageUser._llm_ratings` asks it."""
    return (system, {"role": "user", "content": template("rate").render(item=item_text)})


def _targets_mask(frame, n_users: int, targets_of: np.ndarray) -> np.ndarray:
    """Rows that are among their user's last ``targets_of[user]`` interactions in time."""
    users = frame["user"].to_numpy()
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), users))
    ends = np.searchsorted(users[order], users[order], side="right")
    from_end = np.empty(len(frame), dtype=np.int64)
    from_end[order] = ends - 1 - np.arange(len(frame))
    return from_end < targets_of[users]


def sample_users(train: Dataset, config: ExampleConfig, seed: int) -> np.ndarray:
    """The users examples are built for (sorted): those with more than ``min_history`` training interactions, a
    uniform sample of ``users`` of them (stream `TUNE_USERS`)."""
    counts = np.bincount(train.interactions["user"].to_numpy(), minlength=train.n_users)
    eligible = np.flatnonzero(counts > config.min_history)
    if config.users and config.users < len(eligible):
        eligible = np.sort(TUNE_USERS.generator(seed).choice(eligible, size=config.users, replace=False))
    return eligible


def build_examples(train: Dataset, config: ExampleConfig = ExampleConfig(), seed: int = 0,
                   profile_config: ProfileConfig = ProfileConfig()) -> list[Example]:  # fmt: skip
    """Labelled examples from the training data `train` (see the module docstring), grouped by user (a user's examples
    are adjacent, shuffled among themselves)."""
    config.check()
    users = sample_users(train, config, seed)
    frame = train.interactions
    counts = np.bincount(frame["user"].to_numpy(), minlength=train.n_users)
    targets_of = np.zeros(train.n_users, dtype=np.int64)
    targets_of[users] = np.minimum(config.targets, counts[users] - config.min_history)
    is_target = _targets_mask(frame, train.n_users, targets_of)
    profiles = build_profiles(train.with_interactions(frame[~is_target], name=f"{train.name}[history]"), profile_config)

    texts = item_descriptions(train, profile_config)
    items_of = per_user(frame, train.n_users)
    ratings_of = per_user(frame, train.n_users, "rating")
    times_of = per_user(frame, train.n_users, "timestamp")
    ask_ratings = config.ratings and train.has_ratings
    examples: list[Example] = []
    for user in users.tolist():
        k = int(targets_of[user])
        targets = (items_of[user][-k:], ratings_of[user][-k:], times_of[user][-k:])
        examples += _user_examples(user, profiles[user].describe(), targets, items_of[user], texts, config, ask_ratings,
                                   TUNE_EXAMPLES.generator(seed, user=user))  # fmt: skip
    return examples


def build_held_out_examples(train: Dataset, held: pd.DataFrame, config: ExampleConfig = ExampleConfig(), seed: int = 0,
                            profile_config: ProfileConfig = ProfileConfig()) -> list[Example]:  # fmt: skip
    """The same questions about **held-out** items, to measure a model on (never to train it): for a uniform sample of
    ``config.users`` of the users in `held` with more than ``min_history`` training interactions, their first
    ``config.targets`` held-out interactions in time are the targets (Yes, and the real rating), with negatives drawn
    from the items the user has neither in `train` nor in `held`. Each profile is built from all of `train`, exactly
    as a simulated user's profile is. Draws come from the streams `TUNE_USERS` and `TUNE_EXAMPLES` (seed as given)."""
    config.check()
    counts = np.bincount(train.interactions["user"].to_numpy(), minlength=train.n_users)
    in_held = np.zeros(train.n_users, dtype=bool)
    in_held[held["user"].to_numpy()] = True
    eligible = np.flatnonzero(in_held & (counts > config.min_history))
    if config.users and config.users < len(eligible):
        eligible = np.sort(TUNE_USERS.generator(seed).choice(eligible, size=config.users, replace=False))
    profiles = build_profiles(train, profile_config)
    texts = item_descriptions(train, profile_config)
    trained_on = per_user(train.interactions, train.n_users)
    held_items, held_ratings, held_times = (per_user(held, train.n_users, c) for c in ("item", "rating", "timestamp"))
    ask_ratings = config.ratings and train.has_ratings
    examples: list[Example] = []
    for user in eligible.tolist():
        k = config.targets
        targets = (held_items[user][:k], held_ratings[user][:k], held_times[user][:k])
        had = np.concatenate([trained_on[user], held_items[user]])
        examples += _user_examples(user, profiles[user].describe(), targets, had, texts, config, ask_ratings,
                                   TUNE_EXAMPLES.generator(seed, user=user))  # fmt: skip
    return examples


def _user_examples(user: int, profile_text: str, targets: tuple[np.ndarray, np.ndarray, np.ndarray], had: np.ndarray,
                   texts: list[str], config: ExampleConfig, ask_ratings: bool, rng: np.random.Generator) -> list[Example]:  # fmt: skip
    """One user's questions: per target (item, rating, time) a Yes watch question and its rate question, and
    ``negatives`` No watch questions on items not in `had`; shuffled among themselves."""
    system = system_message(profile_text)
    n_items = len(texts)
    unseen = np.setdiff1d(np.arange(n_items), had)
    mine: list[Example] = []
    for item, rating, when in zip(*targets):
        item, when = int(item), int(when)
        page, position = rng.integers(1, config.pages + 1), rng.integers(1, config.positions + 1)
        mine.append(Example(user, item, "watch", watch_messages(system, texts[item], int(page), int(position)), YES_NO, "Yes", when))
        if ask_ratings:
            stars = str(int(np.clip(np.rint(rating), 1, 5)))
            mine.append(Example(user, item, "rate", rate_messages(system, texts[item]), STARS, stars, when))
        drawn = rng.choice(unseen, size=min(config.negatives, len(unseen)), replace=False) if len(unseen) else []
        for other in np.asarray(drawn, dtype=np.int64).tolist():
            page, position = rng.integers(1, config.pages + 1), rng.integers(1, config.positions + 1)
            mine.append(Example(user, other, "watch", watch_messages(system, texts[other], int(page), int(position)), YES_NO, "No", None))
    return [mine[j] for j in rng.permutation(len(mine))]


def describe_examples(examples: list[Example]) -> dict[str, Any]:
    """Counts for the manifest: users, examples per question and per answer."""
    answers: dict[str, dict[str, int]] = {}
    for example in examples:
        per_question = answers.setdefault(example.question, {})
        per_question[example.answer] = per_question.get(example.answer, 0) + 1
    return {"users": len({e.user for e in examples}), "examples": len(examples),
            "answers": {q: dict(sorted(a.items())) for q, a in sorted(answers.items())}}  # fmt: skip
