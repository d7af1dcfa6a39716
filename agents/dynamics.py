"""Users with dynamics: a watch logit that moves with what the user did lately and with what is popular at its time.

The static preference model (`preferences.py`) gives each user one taste for ever. Real users'
next choices follow their recent history (why sequential recommenders win offline) and what is
popular around them. `WatchDynamics` adds those parts to the static watch logit::

    logit(u, i | recent R, time t) = intercept + w_taste * taste(u, i)
        + w_recent_cooc  * log(1 + 50 * wmean_{j in R} cooc(j, i))
        + w_recent_taste * cos_taste(i, R)
        + w_popularity   * log(1 + count(i))
        + w_popularity_now * log(1 + count of i in the `popularity_days` before t)

* ``taste`` is the preference model's watch logit;
* ``cooc(j, i) = c(j, i) / sqrt(d(j) d(i))``, where ``c`` counts how often j and i stand within
  ``window`` steps of each other in a training history (both orders) and ``d`` sums its rows;
* ``wmean`` weighs the recent items by recency: the newest 1, each older one `recency_decay`
  times the next newer (1: all alike);
* ``cos_taste(i, R)`` is the unit taste factor of i against the weighted mean unit factor of R;
* counts are over the training history only; "now" counts fall in time buckets (a day, or
  coarser on long time spans so that the table stays small).

R is the user's last ``recent`` items: the end of its training history, then what it watches
in the simulation, so interest moves within a session and between rounds.

**Fitting** (`fit_dynamics`): the weights of each variant (a subset of the parts, ``taste``
always in; the variants with recent items once per recency decay in `decays_tried`) maximise
the conditional likelihood of each held-out next item among ``negatives`` random items the
user never had. The data is the **validation** part only. Variants are chosen by their
likelihood on held-out validation users (two folds), never by any agreement figure; the
report lists every variant tried. The intercept then keeps a random unseen item's mean
watch probability at the static model's (whose watch head is calibrated on the real density).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from recarena.simulator.data import Dataset
from recarena.simulator.data.streams import USER_DYNAMICS, USER_DYNAMICS_CARRY

from .preferences import PreferenceModel

PARTS = ("taste", "recent_cooc", "recent_taste", "popularity", "popularity_now")
VARIANTS: dict[str, tuple[str, ...]] = {
    "static": ("taste",),
    "popularity": ("taste", "popularity", "popularity_now"),
    "recent": ("taste", "recent_cooc", "recent_taste"),
    "dynamic": PARTS,
}
"""The variants `fit_dynamics` tries; ``static`` is today's user (its weight fixed at 1)."""
_DENSE_LIMIT = 8192  # up to this many items the co-occurrence table is a dense float32 matrix
_MAX_BUCKETS = 1024
_DAY = 86_400


@dataclass(frozen=True)
class DynamicsConfig:
    """How the dynamic parts are built and fitted."""

    recent: int = 10
    """How many of the user's latest items move its interest."""
    window: int = 5
    """Two items within this many steps of a training history co-occur."""
    popularity_days: float = 30.0
    """The span before the user's time whose interactions count as popular now."""
    recency_decay: float = 1.0
    """Weight of each recent item relative to the next newer one (1: all alike); `fit_dynamics` sets the chosen one."""
    decays_tried: tuple[float, ...] = (1.0, 0.85, 0.7, 0.5, 0.35, 0.25)
    """The recency decays `fit_dynamics` tries for the variants with recent items."""
    negatives: int = 50
    """Random never-had items each held-out next item competes with when fitting."""
    seed: int = 0
    """Seed of the negatives and the folds."""


@dataclass
class WatchDynamics:
    """The fitted parts; `logits` scores pages (see the module docstring)."""

    weights: dict[str, float]
    intercept: float
    config: DynamicsConfig
    cooccurrence: np.ndarray | sparse.csr_matrix = field(repr=False)
    unit_taste: np.ndarray = field(repr=False)
    log_popularity: np.ndarray = field(repr=False)
    cumulative: np.ndarray = field(repr=False)
    """``[buckets + 1, n_items]`` training interactions per item before each time bucket."""
    start_recent: np.ndarray = field(repr=False)
    """``[n_users, recent]``: each user's last items of the history the parts were built on (-1 pads at the front)."""
    start_times: np.ndarray = field(repr=False)
    """``[n_users]``: each user's last time in that history (the "now" of its popularity)."""
    time_origin: int = 0
    bucket_seconds: int = _DAY

    def user_logits(self, taste: np.ndarray, users: np.ndarray, items: np.ndarray, recent: np.ndarray | None = None) -> np.ndarray:
        """`logits` for ``users [n]`` at their own time; `recent` defaults to their `start_recent`."""
        users = np.asarray(users, np.int64)
        return self.logits(taste, items, self.start_recent[users] if recent is None else recent, self.start_times[users])

    def recent_after(self, users: np.ndarray, watches: "list[list[int]]") -> np.ndarray:
        """``[n, recent]``: each user's `start_recent` followed by its simulated `watches`, the last `recent` kept."""
        rows = self.start_recent[np.asarray(users, np.int64)]
        length = rows.shape[1]
        for r, watched in enumerate(watches):
            if watched:
                tail = watched[-length:]
                rows[r] = np.concatenate([rows[r, len(tail) :], tail])
        return rows

    def part_values(self, taste: np.ndarray, items: np.ndarray, recent: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
        """Each part for ``items [n, slate]``; `recent` is ``[n, L]`` (-1 pads), `times` ``[n]``."""
        items, recent = np.asarray(items, np.int64), np.asarray(recent, np.int64).reshape(len(items), -1)
        valid = recent >= 0
        ages = np.arange(recent.shape[1] - 1, -1, -1)  # the newest item (last column) has age 0
        weight = (valid * self.config.recency_decay ** ages[None, :]).astype(np.float32)  # float32 like the tables: half the memory traffic
        total = np.maximum(weight.sum(1), 1e-12)[:, None]
        padded = np.where(valid, recent, 0)
        pairs = np.einsum("nsl,nl->ns", self._cooccurrence(items, padded), weight)
        mean_unit = np.einsum("nlk,nl->nk", self.unit_taste[padded], weight) / total
        recent_taste = np.einsum("nsk,nk->ns", self.unit_taste[items], mean_unit)
        return {
            "taste": np.asarray(taste, float),
            "recent_cooc": np.log1p(50.0 * pairs / total),
            "recent_taste": recent_taste,
            "popularity": self.log_popularity[items],
            "popularity_now": np.log1p(self.popularity_before(np.asarray(times), items)),
        }

    def logits(self, taste: np.ndarray, items: np.ndarray, recent: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Watch logits of ``items [n, slate]`` for users whose static logits are `taste` (same shape)."""
        values = self.part_values(taste, items, recent, times)
        return self.intercept + sum(w * values[part] for part, w in self.weights.items())

    def popularity_before(self, times: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Training interactions with each item in the `popularity_days` up to each row's time."""
        last = self.cumulative.shape[0] - 1
        span = int(np.ceil(self.config.popularity_days * _DAY / self.bucket_seconds))
        end = np.clip((np.asarray(times) - self.time_origin) // self.bucket_seconds + 1, 0, last)
        start = np.clip(end - span, 0, last)
        return (self.cumulative[end[:, None], items] - self.cumulative[start[:, None], items]).astype(float)

    def _cooccurrence(self, items: np.ndarray, recent: np.ndarray) -> np.ndarray:
        """``cooc(recent j, item i)`` as ``[n, slate, L]``."""
        if isinstance(self.cooccurrence, np.ndarray):
            # One flat take: several times faster than fancy indexing with two broadcast index arrays.
            return np.take(self.cooccurrence.ravel(), items[:, :, None] * self.cooccurrence.shape[1] + recent[:, None, :])
        rows = np.broadcast_to(items[:, :, None], items.shape + recent.shape[1:])
        cols = np.broadcast_to(recent[:, None, :], rows.shape)
        return np.asarray(self.cooccurrence[rows.ravel(), cols.ravel()]).reshape(rows.shape)


@dataclass(frozen=True)
class VariantFit:
    """One variant tried: its weights (fitted on every validation user) and its out-of-fold figures."""

    recency_decay: float | None
    """The recency decay of its recent items (None: a variant without them)."""
    weights: dict[str, float]
    log_likelihood: float
    """Mean log-probability of the next item among its negatives, on held-out validation users."""
    auc: float
    """Share of (next item, negative) pairs ranked right, on held-out validation users."""


@dataclass(frozen=True)
class DynamicsReport:
    """Every variant tried and the one chosen (by out-of-fold validation likelihood)."""

    variants: dict[str, VariantFit]
    chosen: str
    users: int


def build_dynamics(history: Dataset, preferences: PreferenceModel, config: DynamicsConfig = DynamicsConfig()) -> WatchDynamics:
    """The parts' tables from `history` (weights: static; `fit_dynamics` fits them)."""
    frame = history.interactions.sort_values(["user", "timestamp"], kind="stable")
    n_items = history.n_items
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy(np.int64)
    same_user = [users[d:] == users[:-d] for d in range(1, config.window + 1)]
    before = np.concatenate([items[:-d][m] for d, m in zip(range(1, config.window + 1), same_user)])
    after = np.concatenate([items[d:][m] for d, m in zip(range(1, config.window + 1), same_user)])
    counts = sparse.coo_matrix((np.ones(len(before)), (before, after)), shape=(n_items, n_items)).tocsr()
    counts = counts + counts.T
    degree = np.asarray(counts.sum(1)).ravel() + 1e-9
    scale = sparse.diags(1.0 / np.sqrt(degree))
    cooccurrence = (scale @ counts @ scale).tocsr()
    table = cooccurrence.toarray().astype(np.float32) if n_items <= _DENSE_LIMIT else cooccurrence
    factors = preferences.watch_item_factors
    unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-12)
    stamps = frame["timestamp"].to_numpy(np.int64)
    origin = int(stamps.min()) if len(stamps) else 0
    span = int(stamps.max()) - origin + 1 if len(stamps) else 1
    bucket = max(_DAY, -(-span // _MAX_BUCKETS))
    buckets = (stamps - origin) // bucket
    per_bucket = np.zeros((int(buckets.max(initial=0)) + 2, n_items), np.int32)
    np.add.at(per_bucket, (buckets + 1, items), 1)
    recent, last_time = recent_items(history, config.recent)
    return WatchDynamics(
        weights={"taste": 1.0}, intercept=0.0, config=config, cooccurrence=table, unit_taste=unit,
        log_popularity=np.log1p(np.bincount(items, minlength=n_items).astype(float)),
        cumulative=np.cumsum(per_bucket, axis=0), start_recent=recent, start_times=last_time, time_origin=origin,
        bucket_seconds=int(bucket),
    )  # fmt: skip


def recent_items(history: Dataset, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last `length` items in time order (``[n_users, length]``, -1 pads at the front) and last time."""
    out = np.full((history.n_users, length), -1, np.int64)
    last = np.zeros(history.n_users, np.int64)
    frame = history.interactions.sort_values(["user", "timestamp"], kind="stable")
    for user, group in frame.groupby("user"):
        tail = group["item"].to_numpy(np.int64)[-length:]
        out[int(user), length - len(tail) :] = tail
        last[int(user)] = int(group["timestamp"].iloc[-1])
    return out, last


def push_watched(rows: np.ndarray, where: np.ndarray, items: np.ndarray, watched: np.ndarray) -> None:
    """Append each page's watched items to its row of `rows` in place, keeping the newest (oldest first):
    row ``where[j]`` takes ``items[j][watched[j]]`` (``items`` and ``watched``: ``[pages, slate]``)."""
    for j in np.flatnonzero(watched.any(1)).tolist():
        row = rows[where[j]]
        row[:] = np.concatenate([row, items[j][watched[j]]])[-len(row) :]


def next_item_pages(dynamics: WatchDynamics, preferences: PreferenceModel, known: Dataset, held_out: pd.DataFrame,
                    negatives: int, rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """Pages of each user's first item of `held_out` (column 0 of ``items``) and `negatives` random items the user
    never had in `known`, with the static ``taste`` of each and the user's ``recent`` items and ``times`` (the end of
    its `known` history), for `next_item_values`. Users with fewer than
    `negatives` + 1 never-had items (who had almost the whole catalogue) are left out."""
    recent, last_time = recent_items(known, dynamics.config.recent)
    nexts = held_out.sort_values(["user", "timestamp"], kind="stable").groupby("user", sort=True).head(1)
    had = [set() for _ in range(known.n_users)]
    for u, i in zip(known.interactions["user"].tolist(), known.interactions["item"].tolist()):
        had[u].add(i)
    nexts = nexts[[known.n_items - len(had[u] | {i}) >= negatives for u, i in zip(nexts["user"].tolist(), nexts["item"].tolist())]]
    users = nexts["user"].to_numpy(np.int64)
    if len(users) < 4:
        raise ValueError(f"users' dynamics: needs held-out next items of at least 4 users with {negatives} never-had items, got {len(users)}")
    candidates = _candidates(users, nexts["item"].to_numpy(np.int64), had, known.n_items, negatives, rng)
    return {"taste": preferences.watch_logits(users, candidates), "items": candidates, "recent": recent[users], "times": last_time[users]}


def next_item_values(dynamics: WatchDynamics, pages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each part's values on `next_item_pages`' pages."""
    return dynamics.part_values(pages["taste"], pages["items"], pages["recent"], pages["times"])


def next_item_fit(values: dict[str, np.ndarray], weights: dict[str, float]) -> tuple[float, float]:
    """Mean log-probability of the next item among its negatives, and AUC, under `weights` (see `next_item_pages`)."""
    return _likelihood_and_auc(sum(w * values[part] for part, w in weights.items()))


def fit_dynamics(history: Dataset, held_out: pd.DataFrame, preferences: PreferenceModel,
                 config: DynamicsConfig = DynamicsConfig()) -> tuple[WatchDynamics, DynamicsReport]:  # fmt: skip
    """Fit the variants on the validation interactions `held_out` (one next item per user is used)."""
    dynamics = build_dynamics(history, preferences, config)
    rng = USER_DYNAMICS.generator(config.seed)
    pages = next_item_pages(dynamics, preferences, history, held_out, config.negatives, rng)
    n = len(pages["taste"])
    folds = rng.permutation(n) % 2
    fits = {}
    for decay in config.decays_tried:
        values = next_item_values(replace(dynamics, config=replace(config, recency_decay=decay)), pages)
        for name, parts in VARIANTS.items():
            recent = any(p.startswith("recent") for p in parts)
            if not recent and decay != config.decays_tried[0]:
                continue  # a variant without recent items is the same at every decay
            x = np.stack([values[p] for p in parts], -1)
            fitted = _conditional_logit(x) if name != "static" else np.ones(1)
            out_of_fold = np.concatenate([x[folds == k] @ (_conditional_logit(x[folds != k]) if name != "static" else np.ones(1)) for k in (0, 1)])
            label = f"{name} decay={decay:g}" if recent else name
            fits[label] = VariantFit(decay if recent else None, dict(zip(parts, fitted.round(6).tolist())), *_likelihood_and_auc(out_of_fold))
    chosen = max(fits, key=lambda n: fits[n].log_likelihood)
    dynamics.weights = fits[chosen].weights
    dynamics.config = replace(config, recency_decay=fits[chosen].recency_decay or config.recency_decay)
    _match_intercept(dynamics, preferences, np.unique(held_out["user"].to_numpy(np.int64)), rng)
    return dynamics, DynamicsReport(fits, chosen, n)


def carry_over(fitted: WatchDynamics, history: Dataset, preferences: PreferenceModel) -> WatchDynamics:
    """`fitted`'s weights on tables built from `history` and `preferences`, for users who know more than the data the
    weights were fitted after (the augment scenario fits on an inner split of its training part, then simulates users
    who know all of it). The intercept is matched again, as `fit_dynamics` does."""
    dynamics = build_dynamics(history, preferences, fitted.config)
    dynamics.weights = dict(fitted.weights)
    users = np.flatnonzero((dynamics.start_recent >= 0).any(1))
    _match_intercept(dynamics, preferences, users, USER_DYNAMICS_CARRY.generator(fitted.config.seed))
    return dynamics


def _match_intercept(dynamics: WatchDynamics, preferences: PreferenceModel, users: np.ndarray, rng: np.random.Generator) -> None:
    """Set `dynamics.intercept` so that 20 random items per user in `users` keep the static model's mean watch probability."""
    random_items = rng.integers(0, len(dynamics.log_popularity), size=(len(users), 20))  # log_popularity: one entry per item
    taste = preferences.watch_logits(users, random_items)
    dynamics.intercept = 0.0
    dynamics.intercept = _matching_intercept(dynamics.user_logits(taste, users, random_items), taste)


def _candidates(users: np.ndarray, positives: np.ndarray, had: list[set[int]], n_items: int, negatives: int,
                rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    out = np.zeros((len(users), negatives + 1), np.int64)
    out[:, 0] = positives
    for row, user in enumerate(users.tolist()):
        taken, drawn = had[user] | {int(positives[row])}, []
        while len(drawn) < negatives:
            item = int(rng.integers(n_items))
            if item not in taken:
                taken.add(item)
                drawn.append(item)
        out[row, 1:] = drawn
    return out


def _conditional_logit(x: np.ndarray) -> np.ndarray:
    """Weights maximising the mean log-probability of column 0 of each row (``x``: ``[rows, candidates, parts]``)."""
    features = torch.as_tensor(x, dtype=torch.float64)
    w = torch.zeros(x.shape[-1], dtype=torch.float64)
    w[0] = 1.0  # start from the static user: taste alone
    w.requires_grad_(True)
    optimiser = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = -torch.log_softmax(features @ w, 1)[:, 0].mean()
        value.backward()
        return value

    optimiser.step(loss)
    return w.detach().numpy()


def _likelihood_and_auc(scores: np.ndarray) -> tuple[float, float]:
    top = scores.max(1, keepdims=True)
    log_likelihood = float((scores[:, 0] - top[:, 0] - np.log(np.exp(scores - top).sum(1))).mean())
    auc = float((scores[:, :1] > scores[:, 1:]).mean() + 0.5 * (scores[:, :1] == scores[:, 1:]).mean())
    return log_likelihood, auc


def _matching_intercept(logits: np.ndarray, static_logits: np.ndarray) -> float:
    """The shift that gives `logits` the mean watch probability of `static_logits` (bisection)."""
    target = (1.0 / (1.0 + np.exp(-static_logits))).mean()
    low, high = -50.0, 50.0
    for _ in range(80):
        middle = (low + high) / 2
        if (1.0 / (1.0 + np.exp(-(logits + middle)))).mean() > target:
            high = middle
        else:
            low = middle
    return (low + high) / 2
