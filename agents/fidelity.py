"""Fidelity: do simulated users behave like the real users they stand in for?

Checks against held-out real behaviour (the test part of a `Split`; the users must
have been built from its training part only):

* **Taste discrimination** (Agent4Rec's protocol): for each held-out user, k held-out
  items the user really had (``positives="interacted"``) or rated >= `liked_rating`
  (``"liked"``) are mixed with r*k items the user never interacted with at all, for r
  in `ratios`. With ``positives="interacted"`` and `liked_variant`, the stricter
  variant (positives are the held-out items rated >= `liked_rating`) is scored from the
  same pages. The simulated user decides watch or not (drawn from its
  `watch_probabilities`, seeded); we report accuracy, precision, recall, F1 with 95%
  bootstrap intervals over users, and the threshold-free AUC of its probabilities.
* **Rating alignment** (`fidelity_rating.py`): for each held-out rating, the simulated
  user's expected rating (RMSE, MAE) and a drawn rating (Wasserstein-1 between the
  simulated and the real rating distributions), against item-mean and biased-MF predictors.

Pages: each user gets one page per part, its positives then ``max(ratios) * k``
negatives; the 1:r page is the positives and the first r*k negatives, so the ratios
share their draws. Pages come from the named stream `FIDELITY_PAGE` (seed, part, user): a
user gets the same page whichever user kind is evaluated, so kinds compare like for like.

Baselines on the same pages, in the same run: a random user saying yes as often as the
simulated one (``random_same_rate``) and a fair coin (``random_coin``); a popularity user
saying yes to as many items per page as the simulated one, the most popular in training
(``popularity_same_count``); and the **popularity-threshold user** (yes when an item's
training popularity is above a threshold tuned for F1 on validation pages of the same
ratio and variant), the bar published LLM simulators have failed to clear. With
validation data the simulated user is also scored deciding by a threshold on its own
probabilities tuned the same way (``simulated_tuned_threshold``): the same freedom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recarena.simulator.data.splits import Split
from recarena.simulator.data.streams import FIDELITY_BOOTSTRAP, FIDELITY_DECISION, FIDELITY_PAGE, FIDELITY_RATING, FIDELITY_SAMPLE

from .contract import SimulatedUser
from .fidelity_rating import BiasedMF, item_means, rating_alignment, tuned_biased_mf

TEST, VALID = 0, 1
Variant = Literal["interacted", "liked"]


@dataclass(frozen=True)
class FidelityConfig:
    """What the fidelity checks sample."""

    ratios: tuple[int, ...] = (1, 2, 3, 9)
    """Negatives per positive item on the discrimination pages."""
    positives: Variant = "liked"
    """Which held-out items are positives: rated >= `liked_rating`, or any interaction (Agent4Rec's protocol)."""
    liked_variant: bool = True
    """With ``positives="interacted"``, also score the strict variant (positives rated >= `liked_rating`) from the same pages."""
    liked_rating: float = 4.0
    """Held-out ratings at or above this make an item liked."""
    max_users: int | None = 200
    """Held-out users checked (sampled under `seed`); None for all."""
    max_positives: int = 10
    """Held-out items per user on a page, at most."""
    max_ratings: int = 20
    """Held-out ratings per user used for rating alignment, at most."""
    bootstrap: int = 1000
    """Resamples of users for the 95% intervals."""
    tuned_user: bool = True
    """Also report the simulated user deciding by a threshold on its own probabilities tuned on
    validation, the same freedom the popularity-threshold user gets (costs one validation page per user)."""
    seed: int = 0
    """Seed for the user sample, the pages and the decisions."""
    progress: bool = True
    """Show a progress bar."""

    def variants(self, has_ratings: bool = True) -> tuple[str, ...]:
        if self.positives == "interacted" and self.liked_variant and has_ratings:
            return ("interacted", "liked")
        return (self.positives,)


@dataclass(frozen=True)
class UserPage:
    """One user's page on one part: `n_positives` held-out items, then negatives; ratio pages are prefixes."""

    user: int
    items: np.ndarray
    n_positives: int
    liked: np.ndarray
    """Which positives are liked (rated >= liked_rating)."""

    def view(self, variant: str, ratio: int) -> tuple[np.ndarray, int]:
        """Indices into `items` of the 1:`ratio` page of `variant`, and how many of them (first) are positives."""
        positives = np.arange(self.n_positives) if variant == "interacted" else np.flatnonzero(self.liked)
        n_negatives = min(ratio * len(positives), len(self.items) - self.n_positives)
        return np.concatenate([positives, self.n_positives + np.arange(n_negatives)]), len(positives)


@dataclass
class Reference:
    """Everything computed once per split from its training (and validation) part, shared by every user kind."""

    everything: dict[int, set[int]]
    """Each user's items in any part: what a negative must never be."""
    popularity: np.ndarray
    """Training interactions per item."""
    popularity_thresholds: dict[tuple[str, int], float]
    """(variant, ratio) -> the popularity threshold tuned for F1 on validation pages."""
    threshold_source: str
    item_mean: np.ndarray
    global_mean: float
    train_ratings: np.ndarray
    biased_mf: BiasedMF | None = None
    variants: tuple[str, ...] = field(default=("liked",))


def items_by_user(split: Split) -> dict[int, set[int]]:
    """Every item each user ever had, in any part: what a negative must not be."""
    return split.dataset.interactions.groupby("user")["item"].apply(lambda s: set(s.tolist())).to_dict()


def _positives_by_user(part: pd.DataFrame, config: FidelityConfig) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    if config.positives == "liked":
        part = part[part["rating"] >= config.liked_rating]
    grouped = part.groupby("user")[["item", "rating"]].apply(lambda f: (f["item"].to_numpy(np.int64), f["rating"].to_numpy(float)))
    return grouped.to_dict()


def sample_users(split: Split, config: FidelityConfig, n: int | None = None) -> np.ndarray:
    """Held-out users with at least one positive, `n` (default `config.max_users`) of them drawn under the seed."""
    candidates = np.array(sorted(_positives_by_user(split.test, config)), dtype=np.int64)
    n = config.max_users if n is None else n
    if n is not None and len(candidates) > n:
        rng = FIDELITY_SAMPLE.generator(config.seed)
        candidates = np.sort(rng.choice(candidates, n, replace=False))
    return candidates


def make_pages(split: Split, part: pd.DataFrame, code: int, users: Sequence[int] | None, config: FidelityConfig,
               everything: dict[int, set[int]]) -> dict[int, UserPage]:
    """Each user's page on `part` (see the module docstring); users without positives there get none."""
    by_user = _positives_by_user(part, config)
    n_items = split.dataset.n_items
    wanted = sorted(by_user) if users is None else [int(u) for u in users if int(u) in by_user]
    pages = {}
    for user in wanted:
        items, ratings = by_user[user]
        items, ratings = items[: config.max_positives], ratings[: config.max_positives]
        rng = FIDELITY_PAGE.generator(config.seed, part=code, user=user)
        seen = everything.get(user, set())
        pool = np.setdiff1d(np.arange(n_items), np.fromiter(seen, dtype=np.int64, count=len(seen)))
        negatives = rng.choice(pool, size=min(max(config.ratios) * len(items), len(pool)), replace=False)
        pages[user] = UserPage(user, np.concatenate([items, negatives]).astype(np.int64), len(items), ratings >= config.liked_rating)
    return pages


def _classification(truth: np.ndarray, said_yes: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(truth & said_yes))
    precision = tp / max(1.0, float(said_yes.sum()))
    recall = tp / max(1.0, float(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(truth == said_yes)), "precision": precision, "recall": recall, "f1": f1}


def _auc(truth: np.ndarray, scores: np.ndarray) -> float:
    ranks = pd.Series(scores).rank(method="average").to_numpy()  # ties count one half
    n_pos, n_neg = truth.sum(), (~truth).sum()
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / max(1, n_pos * n_neg))


def best_threshold(truth: np.ndarray, scores: np.ndarray) -> float:
    """The threshold t (yes when score > t) with the best F1; the lowest such t on ties."""
    candidates = np.concatenate([[-np.inf], np.unique(scores)])
    order = np.argsort(-scores, kind="stable")
    negated = -scores[order]
    true_positives = np.concatenate([[0.0], np.cumsum(truth[order])])
    best, best_f1 = candidates[0], -1.0
    for t in candidates:
        said = int(np.searchsorted(negated, -t, side="left"))  # items with score > t
        f1 = 2 * true_positives[said] / max(1.0, said + truth.sum())
        if f1 > best_f1 + 1e-12:
            best, best_f1 = t, f1
    return float(best)


def tune_thresholds(pages: dict[int, UserPage], scores: dict[int, np.ndarray], variants: Sequence[str],
                    ratios: Sequence[int]) -> dict[tuple[str, int], float]:
    """Per (variant, ratio): the threshold on `scores` (per user, over `pages[user].items`) with the best F1."""
    out = {}
    for variant in variants:
        for ratio in ratios:
            truth, values = [], []
            for user, page in pages.items():
                index, n_pos = page.view(variant, ratio)
                if n_pos:
                    truth.append(np.arange(len(index)) < n_pos)
                    values.append(np.asarray(scores[user], float)[index])
            if truth:
                out[(variant, ratio)] = best_threshold(np.concatenate(truth), np.concatenate(values))
    return out


def build_reference(split: Split, config: FidelityConfig, *, rating_baselines: bool = True) -> Reference:
    """Item statistics, tuned popularity thresholds and rating predictors, from the training (and validation) part only."""
    data = split.dataset
    everything = items_by_user(split)
    popularity = np.bincount(split.train["item"].to_numpy(), minlength=data.n_items).astype(float)
    variants = config.variants(data.has_ratings)
    thresholds, source = {}, "tuned on validation pages"
    if len(split.valid):
        valid_pages = make_pages(split, split.valid, VALID, None, config, everything)
        thresholds = tune_thresholds(valid_pages, {u: popularity[p.items] for u, p in valid_pages.items()}, variants, config.ratios)
    if len(thresholds) < len(variants) * len(config.ratios):
        source = "median training popularity (no validation pages)"
        thresholds = {(v, r): thresholds.get((v, r), float(np.median(popularity))) for v in variants for r in config.ratios}
    item_mean, global_mean = item_means(split.train, data.n_items)
    mf = tuned_biased_mf(split.train, split.valid, data.n_users, data.n_items, seed=config.seed) if rating_baselines and data.has_ratings else None
    return Reference(everything, popularity, thresholds, source, item_mean, global_mean, split.train["rating"].to_numpy(float), mf, variants)


def _bootstrap(per_user: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> dict[str, dict[str, list[float]]]:
    """95% intervals of pooled accuracy/precision/recall/F1 per contender, users resampled with replacement.

    `per_user[name]` is ``[users, 4]``: true positives, yes answers, real positives, correct answers;
    ``"items"`` is ``[users]``. The same resamples serve every contender (paired), and the F1
    differences against the popularity-threshold user get their interval too."""
    items = per_user["items"]
    picks = rng.integers(0, len(items), (n, len(items)))
    n_items = items[picks].sum(1)
    f1s, out = {}, {}
    for name, counts in per_user.items():
        if name == "items":
            continue
        tp, said, real, correct = (counts[:, j][picks].sum(1) for j in range(4))
        precision, recall = tp / np.maximum(said, 1), tp / np.maximum(real, 1)
        f1s[name] = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        out[name] = {f"{metric}_ci95": np.quantile(values, [0.025, 0.975]).tolist()
                     for metric, values in (("accuracy", correct / np.maximum(n_items, 1)), ("precision", precision), ("recall", recall), ("f1", f1s[name]))}  # fmt: skip
    for name in ("simulated", "simulated_tuned_threshold"):
        if name in f1s and "popularity_threshold" in f1s:
            out[name]["f1_minus_popularity_threshold_ci95"] = np.quantile(f1s[name] - f1s["popularity_threshold"], [0.025, 0.975]).tolist()
    return out


def _counts(truth: np.ndarray, yes: np.ndarray) -> list[float]:
    return [float(np.sum(truth & yes)), float(yes.sum()), float(truth.sum()), float(np.sum(truth == yes))]


def _page_decisions(truth, prob, pop, draw, coin_draw, thresholds, key) -> dict[str, np.ndarray]:
    """Every contender's yes/no on one page."""
    yes = draw < prob
    pop_yes = np.zeros(len(truth), bool)
    pop_yes[np.argsort(-pop, kind="stable")[: int(yes.sum())]] = True
    decisions = {
        "simulated": yes,
        "random_same_rate": coin_draw < yes.mean(),
        "random_coin": coin_draw < 0.5,
        "popularity_same_count": pop_yes,
        "popularity_threshold": pop > thresholds["popularity"][key],
    }
    if key in thresholds["user"]:
        decisions["simulated_tuned_threshold"] = prob > thresholds["user"][key]
    return decisions


def fidelity_report(make_user: Callable[[int], SimulatedUser], split: Split, config: FidelityConfig = FidelityConfig(), *,
                    users: Sequence[int] | None = None, reference: Reference | None = None) -> dict:
    """Run the checks for the users `make_user(user_id)` builds (default: `sample_users`); figures and baselines.

    Pass a `reference` from `build_reference` to share it across several user kinds."""
    data = split.dataset
    reference = reference or build_reference(split, config)
    users = sample_users(split, config) if users is None else np.asarray(users, dtype=np.int64)
    variants = reference.variants
    pages = make_pages(split, split.test, TEST, users, config, reference.everything)
    made: dict[int, SimulatedUser] = {}

    def made_user(user: int) -> SimulatedUser:
        if user not in made:
            made[user] = make_user(user)
        return made[user]

    user_thresholds: dict[tuple[str, int], float] = {}
    if config.tuned_user and len(split.valid):
        valid_pages = make_pages(split, split.valid, VALID, users, config, reference.everything)
        scores = {u: made_user(u).watch_probabilities(p.items.tolist()) for u, p in valid_pages.items()}
        user_thresholds = tune_thresholds(valid_pages, scores, variants, config.ratios)
    thresholds = {"popularity": reference.popularity_thresholds, "user": user_thresholds}
    keys = [(v, r) for v in variants for r in config.ratios]
    pooled = {key: {"truth": [], "prob": [], "pop": [], "decisions": [], "counts": []} for key in keys}
    ratings_by_user = split.test.groupby("user")[["item", "rating"]].apply(lambda f: (f["item"].to_numpy(np.int64), f["rating"].to_numpy(float))).to_dict()
    real, expected, drawn, rated_users, rated_items = [], [], [], [], []
    short = {key: 0 for key in keys}  # users whose catalogue had too few never-touched items for a full 1:r page
    for user_id in tqdm(users.tolist(), desc="fidelity", disable=not config.progress):
        user = made_user(int(user_id))
        rng = FIDELITY_DECISION.generator(config.seed, user=int(user_id))
        page = pages.get(int(user_id))
        if page is not None:
            prob = np.asarray(user.watch_probabilities(page.items.tolist()), dtype=float)
            draw, coin_draw = rng.random(len(page.items)), rng.random(len(page.items))
            for key in keys:
                index, n_pos = page.view(*key)
                if n_pos == 0:
                    continue
                truth = np.arange(len(index)) < n_pos
                short[key] += int(len(index) < (1 + key[1]) * n_pos)
                decisions = _page_decisions(truth, prob[index], reference.popularity[page.items[index]], draw[index], coin_draw[index], thresholds, key)
                record = pooled[key]
                record["truth"].append(truth)
                record["prob"].append(prob[index])
                record["pop"].append(reference.popularity[page.items[index]])
                record["decisions"].append(decisions)
                record["counts"].append({name: _counts(truth, yes) for name, yes in decisions.items()})
        if data.has_ratings and int(user_id) in ratings_by_user:
            items, ratings = (a[: config.max_ratings] for a in ratings_by_user[int(user_id)])
            levels = np.asarray(user.rating_probabilities(items.tolist()), dtype=float)
            expected.append(levels @ np.arange(1, 6))
            drawn.append(1 + (rng.random((len(items), 1)) > np.cumsum(levels, 1)[:, :-1]).sum(1))
            real.append(ratings)
            rated_users.append(np.full(len(items), int(user_id)))
            rated_items.append(items)

    boot_rng = FIDELITY_BOOTSTRAP.generator(config.seed)
    tables = {variant: {} for variant in variants}
    for (variant, ratio), record in pooled.items():
        if not record["truth"]:
            continue
        truth = np.concatenate(record["truth"])
        names = list(record["decisions"][0])
        figures = {name: _classification(truth, np.concatenate([d[name] for d in record["decisions"]])) for name in names}
        per_user = {name: np.array([c[name] for c in record["counts"]]) for name in names}
        per_user["items"] = np.array([len(t) for t in record["truth"]], dtype=float)
        intervals = _bootstrap(per_user, boot_rng, config.bootstrap)
        for name in names:
            figures[name].update(intervals[name])
        figures["simulated"].update(auc=_auc(truth, np.concatenate(record["prob"])), yes_rate=float(np.concatenate([d["simulated"] for d in record["decisions"]]).mean()))
        figures["popularity_same_count"]["auc"] = _auc(truth, np.concatenate(record["pop"]))
        figures["popularity_threshold"]["threshold"] = reference.popularity_thresholds[(variant, ratio)]
        if "simulated_tuned_threshold" in figures:
            figures["simulated_tuned_threshold"]["threshold"] = user_thresholds[(variant, ratio)]
        tables[variant][f"1:{ratio}"] = {**figures, "items": len(truth), "users": len(record["truth"]), "positive_share": float(truth.mean()),
                                         "users_short_of_negatives": short[(variant, ratio)]}  # fmt: skip
    report = {"users": len(users), "positives": variants[0], "threshold_source": reference.threshold_source,
              "discrimination": tables[variants[0]]}  # fmt: skip
    if len(variants) > 1:
        report["discrimination_liked"] = tables["liked"]
    if real:
        u, i, r = np.concatenate(rated_users), np.concatenate(rated_items), np.concatenate(real)
        predictors = {"global_mean": np.full(len(r), reference.global_mean), "item_mean": reference.item_mean[i]}
        if reference.biased_mf is not None:
            predictors["biased_mf"] = reference.biased_mf.predict(u, i)
        report["rating"] = rating_alignment(r, np.concatenate(expected), np.concatenate(drawn), predictors, reference.train_ratings,
                                            FIDELITY_RATING.generator(config.seed))  # fmt: skip
    return report
