"""A simulated user's profile, computed from one real user's history (Agent4Rec's traits).

For user u with rated items I_u and ratings r_ui (all from the dataset passed in,
which should be a *training* split: nothing held out may shape a profile):

* **activity** = |I_u|, the number of interactions. It drives how many pages the
  simulated user tolerates.
* **conformity** = mean over I_u of |r_ui - mean_i|, where mean_i is item i's mean
  rating in the same data. A *small* gap means the user rates like the crowd, so the
  conformity tier is the reverse of the gap's tier (small gap -> "high").
* **diversity** = H(p_u) / log(G): the entropy of the user's genre distribution
  (each item spreads one unit evenly over its genres), normalised by the entropy of
  the uniform distribution over the G genres; 0 is one genre only, 1 all equally.
* **taste**: liked and disliked genres by genre affinity
  a_ug = sum_{i in I_u, g in genres(i)} (r_ui - mean_u) / (n_ug + 2), i.e. the user's
  mean deviation in that genre shrunk towards 0 for rarely seen genres; the top
  positive ones are liked, the bottom negative ones disliked. Example titles are the
  most recent items rated >= `liked_rating` and <= `disliked_rating`.

Each trait's tier ("low", "medium", "high") comes from the 1/3 and 2/3 quantiles
over the users with enough history. A user with fewer than `min_history`
interactions gets a profile flagged `thin` (traits computed from what there is,
tiers still assigned), never an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset
from recarena.simulator.data.dataset import per_user

TIERS = ("low", "medium", "high")


@dataclass
class UserProfile:
    """Everything a simulated user knows about the real user it stands in for."""

    user: int
    raw_id: str
    activity: int
    activity_tier: str
    conformity_gap: float
    conformity_tier: str
    diversity: float
    diversity_tier: str
    mean_rating: float
    liked_genres: list[str]
    disliked_genres: list[str]
    liked_titles: list[str]
    disliked_titles: list[str]
    demographics: dict[str, Any]
    thin: bool
    taste_summary: str | None = None
    """An LLM-written summary of the taste, when an LLM was configured (see `persona.py`)."""
    persona: dict[str, str] = field(default_factory=dict)
    """Traits the LLM inferred consistently across seeds (see `persona.py`)."""
    persona_agreement: float | None = None
    """Share of persona traits on which the LLM's answers agreed."""

    def describe(self) -> str:
        """The profile in words, as prompts show it."""
        parts = []
        demo = self.demographics
        who = ", ".join(str(v) for v in (demo.get("age"), demo.get("gender"), demo.get("occupation")) if v not in (None, ""))
        if who:
            parts.append(f"You are a movie viewer ({who}).")
        parts.append(
            f"Activity: {self.activity_tier} ({self.activity} movies rated). "
            f"Conformity with popular opinion: {self.conformity_tier}. Taste diversity: {self.diversity_tier}."
        )
        if self.liked_genres:
            parts.append(f"You like {', '.join(self.liked_genres)}.")
        if self.disliked_genres:
            parts.append(f"You dislike {', '.join(self.disliked_genres)}.")
        if self.liked_titles:
            parts.append(f"Movies you loved: {'; '.join(self.liked_titles)}.")
        if self.disliked_titles:
            parts.append(f"Movies you disliked: {'; '.join(self.disliked_titles)}.")
        if self.taste_summary:
            parts.append(self.taste_summary)
        if self.persona:
            parts.append("Personality: " + ", ".join(f"{k} {v}" for k, v in self.persona.items()) + ".")
        return " ".join(parts)


@dataclass(frozen=True)
class ProfileConfig:
    """How profiles are computed."""

    liked_rating: float = 4.0
    """Ratings at or above this count as liked."""
    disliked_rating: float = 2.0
    """Ratings at or below this count as disliked."""
    n_genres: int = 3
    """At most this many liked and disliked genres."""
    n_titles: int = 5
    """At most this many example titles of each kind."""
    min_history: int = 5
    """Users with fewer interactions are flagged thin."""
    item_statistics: bool = True
    """Describe each item to the LLM with its popularity and mean rating in this history (Agent4Rec's item profile:
    quality and popularity beside the genres); False: title, year and genres only."""


def _tiers(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    low, high = np.quantile(reference, [1 / 3, 2 / 3]) if len(reference) else (0.0, 0.0)
    return np.where(values <= low, 0, np.where(values <= high, 1, 2))


def build_profiles(dataset: Dataset, config: ProfileConfig = ProfileConfig()) -> list[UserProfile]:
    """One profile per user of `dataset`, from its interactions; vectorised, no LLM."""
    frame = dataset.interactions
    users = frame["user"].to_numpy()
    items = frame["item"].to_numpy()
    ratings = frame["rating"].to_numpy(dtype=np.float64)
    n_users, n_items = dataset.n_users, dataset.n_items

    activity = np.bincount(users, minlength=n_users)
    seen = np.maximum(activity, 1)
    user_mean = np.bincount(users, ratings, minlength=n_users) / seen
    item_count = np.maximum(np.bincount(items, minlength=n_items), 1)
    item_mean = np.bincount(items, ratings, minlength=n_items) / item_count
    gap = np.bincount(users, np.abs(ratings - item_mean[items]), minlength=n_users) / seen

    genres = dataset.genre_vocabulary()
    genre_index = {g: j for j, g in enumerate(genres)}
    # Explicit int64: an item without genres (GroupLens drops "unknown") is an empty list, which numpy would
    # otherwise read as float64 and make every genre index below a float that np.bincount refuses.
    item_genres = [np.asarray([genre_index[g] for g in gs], dtype=np.int64) for gs in dataset.items["genres"]]
    per_item = np.array([len(g) for g in item_genres], dtype=np.int64)
    rows = np.repeat(np.arange(len(frame)), per_item[items])
    genre_of_row = np.concatenate([item_genres[i] for i in items]) if len(rows) else np.array([], np.int64)
    user_of_row = users[rows]
    n_genres = max(1, len(genres))
    flat = user_of_row * n_genres + genre_of_row
    mass = np.bincount(flat, 1.0 / per_item[items][rows], minlength=n_users * n_genres).reshape(n_users, n_genres)
    share = mass / np.maximum(mass.sum(1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(share > 0, share * np.log(share), 0.0).sum(1)
    diversity = entropy / np.log(n_genres) if n_genres > 1 else np.zeros(n_users)
    count_ug = np.bincount(flat, minlength=n_users * n_genres).reshape(n_users, n_genres)
    deviation = np.bincount(flat, (ratings - user_mean[users])[rows], minlength=n_users * n_genres).reshape(n_users, n_genres)
    affinity = deviation / (count_ug + 2.0)

    enough = activity >= config.min_history
    reference = enough if enough.any() else np.ones(n_users, bool)
    activity_tier = _tiers(activity, activity[reference])
    conformity_tier = 2 - _tiers(gap, gap[reference])
    diversity_tier = _tiers(diversity, diversity[reference])

    titles = dataset.items["title"].to_numpy()
    histories = list(zip(per_user(frame, n_users), per_user(frame, n_users, "rating")))
    user_rows = dataset.users
    profiles = []
    for u in range(n_users):
        order = np.argsort(-affinity[u], kind="stable")
        liked = [genres[g] for g in order[: config.n_genres] if affinity[u, g] > 0]
        disliked = [genres[g] for g in order[::-1][: config.n_genres] if affinity[u, g] < 0]
        hist_items, hist_ratings = histories[u]
        recent_first = np.arange(len(hist_items))[::-1]
        liked_titles = [titles[hist_items[k]] for k in recent_first if hist_ratings[k] >= config.liked_rating][: config.n_titles]
        disliked_titles = [titles[hist_items[k]] for k in recent_first if hist_ratings[k] <= config.disliked_rating][: config.n_titles]
        row = user_rows.iloc[u]
        demographics = {k: _plain(row[k]) for k in ("age", "gender", "occupation") if k in user_rows}
        profiles.append(
            UserProfile(
                user=u,
                raw_id=str(row["raw_id"]),
                activity=int(activity[u]),
                activity_tier=TIERS[activity_tier[u]],
                conformity_gap=float(gap[u]),
                conformity_tier=TIERS[conformity_tier[u]],
                diversity=float(diversity[u]),
                diversity_tier=TIERS[diversity_tier[u]],
                mean_rating=float(user_mean[u]),
                liked_genres=liked,
                disliked_genres=disliked,
                liked_titles=liked_titles,
                disliked_titles=disliked_titles,
                demographics=demographics,
                thin=bool(activity[u] < config.min_history),
            )
        )
    return profiles


def item_text_version(config: ProfileConfig = ProfileConfig()) -> int:
    """The version of the item descriptions `item_descriptions` writes (2: with statistics, 1: without); it joins the
    prompt versions an adapter records, as the LLM learns from the item text too."""
    return 2 if config.item_statistics else 1


#: A profile with every part `UserProfile.describe` can write, for `profile_text_digest`.
_SPECIMEN = UserProfile(
    user=0, raw_id="0", activity=42, activity_tier="medium", conformity_gap=0.7, conformity_tier="high", diversity=0.5,
    diversity_tier="low", mean_rating=3.6, liked_genres=["Comedy", "Drama"], disliked_genres=["Horror"],
    liked_titles=["Fargo (1996)"], disliked_titles=["Spawn (1997)"], demographics={"age": 30, "gender": "F", "occupation": "writer"},
    thin=False, taste_summary="Likes quiet dramas.", persona={"patience": "high"}, persona_agreement=1.0,
)  # fmt: skip


def profile_text_digest() -> str:
    """A short digest of how `UserProfile.describe` writes a profile (its text for a fixed specimen profile).

    A tuned adapter learnt from profiles written this way, so the digest joins the prompt versions its manifest records:
    change the wording and every adapter made before is refused until it is made again, with no version to bump."""
    return hashlib.sha256(_SPECIMEN.describe().encode()).hexdigest()[:12]


def item_descriptions(dataset: Dataset, config: ProfileConfig = ProfileConfig()) -> list[str]:
    """Each item's line in the users' prompts: the dataset's text (title, year, genres), and with ``item_statistics``
    the share of this history's users who had it and its mean rating here, e.g. ``Fargo (1996); genres: Crime, Drama,
    Thriller; watched by 54% of users; average rating 4.2 of 5``. Computed from `dataset` only (give it a training
    part: nothing held out may reach an item statistic)."""
    texts = dataset.items["text"].tolist()
    if not config.item_statistics:
        return texts
    frame = dataset.interactions
    items = frame["item"].to_numpy()
    users_of_item = frame.drop_duplicates(["user", "item"])["item"].to_numpy()
    share = np.bincount(users_of_item, minlength=dataset.n_items) / max(1, frame["user"].nunique())
    counts = np.bincount(items, minlength=dataset.n_items)
    out = []
    rated = dataset.has_ratings
    means = np.bincount(items, frame["rating"].to_numpy(dtype=np.float64), minlength=dataset.n_items) / np.maximum(counts, 1) if rated else None
    for i, text in enumerate(texts):
        if counts[i] == 0:
            out.append(f"{text}; not watched by anyone yet")
            continue
        watched = f"watched by {share[i]:.0%} of users" if share[i] >= 0.005 else "watched by under 1% of users"
        out.append(f"{text}; {watched}; average rating {means[i]:.1f} of 5" if rated else f"{text}; {watched}")
    return out


def _plain(value: Any) -> Any:
    """A demographic cell as a JSON-friendly value (missing -> None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def save_profiles(profiles: list[UserProfile], path: str | Path) -> None:
    """Write profiles as JSON (one object per user), LLM parts included."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps([asdict(p) for p in profiles], indent=1))


def load_profiles(path: str | Path) -> list[UserProfile]:
    """Read what `save_profiles` wrote."""
    return [UserProfile(**record) for record in json.loads(Path(path).read_text())]
