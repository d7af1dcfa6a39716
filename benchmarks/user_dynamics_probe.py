"""Probe for issue 18 (agreement of simulated A/B verdicts with reality): does a watch model with
dynamics order the six default recommenders as their real held-out NDCG@10 does?

    python benchmarks/user_dynamics_probe.py --seed 0 --models runs/probe-models

1. ml-100k, leave-one-out by time. The six default recommenders are fitted on the training part
   (validation for early stopping), saved in ``--models`` (a rerun loads them) and evaluated on
   the test part (NDCG@10, full ranking): the **real order**.
2. The users' kit (the static preference model of today's statistical user) is fitted on the
   training part. Features of (user, item) at the end of the user's known history:
   ``taste`` (the static model's watch logit), ``recent_cooc`` (co-occurrence within 5 steps of
   the candidate with the user's last 10 items), ``recent_taste`` (cosine of the candidate's taste
   factors with the mean of the last 10 items'), ``pop`` (log training count) and ``pop_now`` (log
   count in the 30 days before the user's time).
3. Variants are fitted by conditional likelihood (the next item among 50 unseen random items) on
   the **validation** part only and scored on the test part (log-likelihood per user and AUC).
   The variant is chosen by validation likelihood, never by agreement.
4. Each arm's first page (top 10, known items excluded) for 300 users: the expected watch rate
   under the static and the dynamic model (position decay 0.3 log(1 + k); the dynamic intercept
   set so a random unseen item keeps the static model's mean probability). Spearman and Kendall
   between the simulated and the real orders.

A probe, not the product: `recarena agreement` (issue 18) is to run full sessions with users
whose watch logit carries these parts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from recarena.agents.kit import build_user_kit
from recarena.recommenders import Recommender, build_recommender, history_scorer
from recarena.recommenders.evaluation import evaluate
from recarena.simulator.data import load_dataset
from recarena.simulator.data.splits import leave_one_out

ARMS = ("random", "pop", "itemknn", "bpr", "lightgcn", "sasrec")
WINDOW_STEPS, RECENT, NEGATIVES, POP_DAYS = 5, 10, 50, 30
VARIANTS = {
    "static": ["taste"],
    "taste+pop": ["taste", "pop"],
    "taste+pop_now": ["taste", "pop_now"],
    "taste+recent": ["taste", "recent_cooc", "recent_taste"],
    "dynamic": ["taste", "recent_cooc", "recent_taste", "pop", "pop_now"],
}


def fitted_arms(split, seed: int, models: Path) -> dict[str, float]:
    real = {}
    for name in ARMS:
        path = models / name
        if (path / "recommender.json").exists():
            model = Recommender.load(path)
        else:
            model = build_recommender(name, {"seed": seed})
            model.fit(split.train_dataset(), valid=split.valid)
            model.save(path)
        real[name] = float(evaluate(history_scorer(model, split, "test"), split, "test", [10])["ndcg@10"])
        print(f"{name}: real NDCG@10 {real[name]:.4f}", flush=True)
    return real


class Features:
    """The (user, item) features of the module docstring, from the training part only."""

    def __init__(self, train, preferences):
        frame = train.interactions.sort_values(["user", "timestamp"], kind="stable")
        self.n_items = train.n_items
        self.preferences = preferences
        self.histories = [g["item"].to_numpy() for _, g in frame.groupby("user")]
        self.last_time = frame.groupby("user")["timestamp"].max().reindex(range(train.n_users)).to_numpy()
        before = np.concatenate([h[:-d] for h in self.histories for d in range(1, WINDOW_STEPS + 1)])
        after = np.concatenate([h[d:] for h in self.histories for d in range(1, WINDOW_STEPS + 1)])
        counts = np.zeros((self.n_items, self.n_items))
        np.add.at(counts, (before, after), 1.0)
        counts += counts.T
        degree = counts.sum(1) + 1e-9
        self.cooc = counts / np.sqrt(degree[:, None] * degree[None, :])
        self.popularity = np.bincount(frame["item"], minlength=self.n_items).astype(float)
        self.item_times = {int(i): np.sort(g["timestamp"].to_numpy()) for i, g in frame.groupby("item")}
        factors = preferences.watch_item_factors
        self.unit_factors = factors / np.linalg.norm(factors, axis=1, keepdims=True)

    def popularity_now(self, times: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.zeros(items.shape)
        for r, c in np.ndindex(*items.shape):
            stamps = self.item_times.get(int(items[r, c]))
            if stamps is not None:
                out[r, c] = np.searchsorted(stamps, times[r], "right") - np.searchsorted(stamps, times[r] - POP_DAYS * 86400, "left")
        return out

    def __call__(self, users: np.ndarray, items: np.ndarray, histories: list[np.ndarray], times: np.ndarray) -> dict[str, np.ndarray]:
        recent = [h[-RECENT:] for h in histories]
        return {
            "taste": self.preferences.watch_logits(users, items),
            "recent_cooc": np.log1p(50 * np.stack([self.cooc[items[r]][:, recent[r]].mean(1) for r in range(len(users))])),
            "recent_taste": np.stack([self.unit_factors[items[r]] @ self.unit_factors[recent[r]].mean(0) for r in range(len(users))]),
            "pop": np.log1p(self.popularity[items]),
            "pop_now": np.log1p(self.popularity_now(times, items)),
        }


def candidates(frame, banned: list[set[int]], n_items: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per user of `frame`: its item first, then NEGATIVES random items it never had."""
    frame = frame.sort_values("user")
    users, positives = frame["user"].to_numpy(), frame["item"].to_numpy()
    items = np.zeros((len(users), NEGATIVES + 1), dtype=np.int64)
    items[:, 0] = positives
    for r, u in enumerate(users):
        taken, negatives = banned[u] | {int(positives[r])}, []
        while len(negatives) < NEGATIVES:
            c = int(rng.integers(n_items))
            if c not in taken:
                negatives.append(c)
                taken.add(c)
        items[r, 1:] = negatives
    return users, items


def fit_weights(features: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    x = torch.tensor(np.stack([features[n] for n in names], -1), dtype=torch.float64)
    w = torch.zeros(len(names), dtype=torch.float64)
    w[names.index("taste")] = 1.0
    w.requires_grad_(True)
    optimiser = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = -torch.log_softmax(x @ w, 1)[:, 0].mean()
        loss.backward()
        return loss

    optimiser.step(closure)
    return w.detach().numpy()


def held_out(features: dict[str, np.ndarray], names: list[str], w: np.ndarray) -> dict[str, float]:
    z = np.stack([features[n] for n in names], -1) @ w
    top = z.max(1, keepdims=True)
    log_likelihood = (z[:, 0] - top[:, 0] - np.log(np.exp(z - top).sum(1))).mean()
    auc = (z[:, :1] > z[:, 1:]).mean() + 0.5 * (z[:, :1] == z[:, 1:]).mean()
    return {"log_likelihood": float(log_likelihood), "auc": float(auc)}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--models", type=Path, default=Path("runs/probe-models"))
    parser.add_argument("--out", type=Path, default=Path("runs/user_dynamics_probe.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    split = leave_one_out(dataset)
    real = fitted_arms(split, args.seed, args.models / f"seed{args.seed}")
    train = split.train_dataset()
    features = Features(train, build_user_kit(train, seed=args.seed).preferences)
    rng = np.random.default_rng(args.seed)
    seen = [set(h.tolist()) for h in features.histories]
    valid_item = split.valid.set_index("user")["item"]
    valid_time = split.valid.set_index("user")["timestamp"]
    users_v, items_v = candidates(split.valid, seen, dataset.n_items, rng)
    f_valid = features(users_v, items_v, [features.histories[u] for u in users_v], features.last_time[users_v])
    known = [s | {int(valid_item[u])} if u in valid_item.index else s for u, s in enumerate(seen)]
    users_t, items_t = candidates(split.test, known, dataset.n_items, rng)
    histories_t = [np.append(features.histories[u], valid_item[u]) if u in valid_item.index else features.histories[u] for u in users_t]
    times_t = np.array([valid_time.get(u, features.last_time[u]) for u in users_t])
    f_test = features(users_t, items_t, histories_t, times_t)
    fits = {}
    for name, names in VARIANTS.items():
        w = np.array([1.0]) if name == "static" else fit_weights(f_valid, names)
        fits[name] = {"weights": dict(zip(names, w.round(3).tolist())), "valid": held_out(f_valid, names, w), "test": held_out(f_test, names, w)}
        print(name, fits[name], flush=True)
    chosen = max((n for n in VARIANTS if n != "static"), key=lambda n: fits[n]["valid"]["log_likelihood"])
    names, w = VARIANTS[chosen], np.array(list(fits[chosen]["weights"].values()))
    users = np.sort(np.random.default_rng(np.random.SeedSequence([7, 1])).choice(dataset.n_users, args.users, replace=False))
    histories = [features.histories[u] for u in users]
    random_items = np.stack([rng.choice(dataset.n_items, 30) for _ in users])
    f_random = features(users, random_items, histories, features.last_time[users])
    z_random = np.stack([f_random[n] for n in names], -1) @ w
    target = sigmoid(f_random["taste"]).mean()
    low, high = -50.0, 50.0
    for _ in range(80):  # the intercept that keeps a random unseen item's mean watch probability
        low, high = (low, (low + high) / 2) if sigmoid(z_random + (low + high) / 2).mean() > target else ((low + high) / 2, high)
    shift = (low + high) / 2
    position = 0.3 * np.log1p(np.arange(10))[None]
    simulated = {}
    for arm in ARMS:
        slates = np.asarray(Recommender.load(args.models / f"seed{args.seed}" / arm).recommend(users, 10, exclude=histories).items)
        f = features(users, slates, histories, features.last_time[users])
        simulated[arm] = {"static": float(sigmoid(f["taste"] - position).mean()),
                          chosen: float(sigmoid(np.stack([f[n] for n in names], -1) @ w + shift - position).mean())}  # fmt: skip
    orders = {}
    for kind in ("static", chosen):
        values = [simulated[a][kind] for a in ARMS]
        orders[kind] = {"spearman": float(spearmanr([real[a] for a in ARMS], values)[0]),
                        "kendall": float(kendalltau([real[a] for a in ARMS], values)[0]),
                        "order": sorted(ARMS, key=lambda a: simulated[a][kind])}  # fmt: skip
        print(kind, orders[kind], flush=True)
    print("real order", sorted(ARMS, key=real.get))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"real_ndcg@10": real, "fits": fits, "chosen": chosen, "simulated_page1_watch_rate": simulated,
                                    "agreement": orders, "seconds": time.perf_counter() - started}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
