"""Fit the hybrid user's `Blend` by maximum likelihood on held-out real interactions.

For a sample of users, the held-out part of a split gives positives (items the
user really had) and their ratings; negatives are items the user never had,
drawn at `negatives` per positive. Positives are weighted to stand for all of the
user's items and negatives for the whole unseen catalog, so the fitted bias keeps
watch probabilities at the preference model's scale (P(the user ever had it)).

* watch: logistic regression of had/not-had on the LLM's logit of P(Yes) and the
  preference model's watch logit -> (a, b, c).
* rating: log-linear pooling of the LLM's and the preference model's P(1..5),
  with a bias per level -> (a_r, b_r, c_1..c_5), c_1 fixed at 0.

Both are maximum a posteriori under a weak Gaussian prior centred on the statistical user
(`PRIOR_SD`): with the few dozen examples of a calibration, plain maximum likelihood diverges.

The log-likelihoods of the LLM alone, the preference model alone and the pool,
and each expert's effect (weight x spread of its logit), are kept in
`Blend.fitted_on`: they say how much the LLM adds beyond the data.
With the embedded 135M model expect a near zero; a strong model should earn weight.

Scenarios call `calibrate_on_validation`, which reads only a split's validation part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from recarena.simulator.data.splits import Split

from .language_user import Blend, _logit
from .kit import UserKit


#: Standard deviation, in logit units, of the Gaussian prior on every blend weight. The prior is centred on the
#: statistical user (LLM 0, preference 1, biases 0), so the LLM must earn its weight from the data. Why a prior at
#: all: a calibration has a few dozen examples, and plain maximum likelihood separates them and sends the weights to
#: thousands (seen: an LLM weight of -5121 from 8 examples). Its pull shrinks as 1/examples, so with many it vanishes.
PRIOR_SD = 1.0


def _fit(nll, parameters: list[torch.Tensor], centres: list[float], n_examples: int, steps: int = 200) -> tuple[float, float]:
    """Maximum a posteriori weights under the `PRIOR_SD` prior around `centres`; returns the fitted mean NLL (no prior)
    and the objective minimised (the NLL plus the prior's penalty)."""
    optimiser = torch.optim.LBFGS(parameters, lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")
    scale = 1.0 / (2.0 * PRIOR_SD**2 * max(1, n_examples))

    def closure():
        optimiser.zero_grad()
        loss = nll() + scale * sum(((p - c) ** 2).sum() for p, c in zip(parameters, centres))
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        value = float(nll())
        return value, value + float(scale * sum(((p - c) ** 2).sum() for p, c in zip(parameters, centres)))


def calibrate_on_validation(
    kit: UserKit,
    split: Split,
    llm,
    *,
    n_users: int,
    positives_per_user: int,
    negatives: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> Blend:
    """The hybrid users' `Blend` for `llm`, fitted on `split`'s validation part: how scenarios calibrate.

    Nothing held out for evaluation may reach a user model, so the test part is never read. Build `kit`
    on ``split.train`` only, so that the validation items are news to the users being calibrated."""
    return calibrate_blend(kit, split.valid, llm, n_users=n_users, positives_per_user=positives_per_user, negatives=negatives,
                           seed=seed, progress=progress)  # fmt: skip


def calibrate_blend(
    kit: UserKit,
    held_out: pd.DataFrame,
    llm,
    *,
    n_users: int = 50,
    positives_per_user: int = 4,
    negatives: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> Blend:
    """Fit a hybrid `Blend` for `llm` on `held_out` interactions (never the part you evaluate on)."""
    rng = np.random.default_rng(seed)
    users = np.unique(held_out["user"].to_numpy())
    users = np.sort(rng.choice(users, min(n_users, len(users)), replace=False))
    n_items = kit.history.n_items
    by_user = held_out.groupby("user")[["item", "rating"]].apply(lambda f: (f["item"].to_numpy(), f["rating"].to_numpy())).to_dict()
    llm_logit, pref_logit, label, weight = [], [], [], []
    llm_levels, pref_levels, real_rating = [], [], []
    for u in tqdm(users.tolist(), desc="calibrating hybrid users", disable=not progress):
        probe = kit.llm_user(u, np.random.default_rng(0), llm)
        items, ratings = by_user[u]
        items, ratings = items[:positives_per_user], ratings[:positives_per_user]
        had = kit.preferences.seen[u] | set(by_user[u][0].tolist())
        pool = np.setdiff1d(np.arange(n_items), np.fromiter(had, dtype=np.int64, count=len(had)))
        negs = rng.choice(pool, min(len(pool), negatives * len(items)), replace=False)
        shown = np.concatenate([items, negs]).astype(np.int64)
        p_yes, ok = probe._llm_watch(shown.tolist(), page=0)
        keep = ok
        llm_logit.append(_logit(p_yes)[keep])
        # The statistical user's interest (its dynamics included, from its last real items): the expert the LLM is pooled with.
        pref_logit.append(kit.behaviour.interest_logits(np.array([u]), shown[None, :])[0][keep])
        label.append((np.arange(len(shown)) < len(items))[keep])
        # Each sampled positive stands for all the user's items, each negative for all unseen ones,
        # so the fitted bias reproduces P(the user ever had the item), as the preference model does.
        n_total = len(had)
        weight.append(np.where(np.arange(len(shown)) < len(items), n_total / max(1, len(items)), len(pool) / max(1, len(negs)))[keep])
        levels, rating_ok = probe._llm_ratings(items.tolist())
        llm_levels.append(levels[rating_ok])
        pref_levels.append(kit.preferences.rating_probabilities(np.full(len(items), u), items.astype(np.int64))[rating_ok])
        real_rating.append(np.clip(np.round(ratings), 1, 5).astype(np.int64)[rating_ok])

    x_llm = torch.as_tensor(np.concatenate(llm_logit), dtype=torch.float64)
    x_pref = torch.as_tensor(np.concatenate(pref_logit), dtype=torch.float64)
    y = torch.as_tensor(np.concatenate(label), dtype=torch.float64)
    w = torch.as_tensor(np.concatenate(weight), dtype=torch.float64)
    a, b, c = (torch.zeros((), dtype=torch.float64, requires_grad=True) for _ in range(3))
    bce = lambda logits: (w * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum() / w.sum()  # noqa: E731
    n = len(y)
    watch_pool, watch_pool_objective = _fit(lambda: bce(a * x_llm + b * x_pref + c), [a, b, c], [0.0, 1.0, 0.0], n)
    a0, c0 = torch.zeros((), dtype=torch.float64, requires_grad=True), torch.zeros((), dtype=torch.float64, requires_grad=True)
    watch_llm_only, _ = _fit(lambda: bce(a0 * x_llm + c0), [a0, c0], [1.0, 0.0], n)
    b1, c1 = torch.ones((), dtype=torch.float64, requires_grad=True), torch.zeros((), dtype=torch.float64, requires_grad=True)
    watch_pref_only, watch_pref_only_objective = _fit(lambda: bce(b1 * x_pref + c1), [b1, c1], [1.0, 0.0], n)

    log_llm = torch.as_tensor(np.log(np.concatenate(llm_levels)), dtype=torch.float64)
    log_pref = torch.as_tensor(np.log(np.concatenate(pref_levels)), dtype=torch.float64)
    target = torch.as_tensor(np.concatenate(real_rating) - 1)
    ar, br = torch.zeros((), dtype=torch.float64, requires_grad=True), torch.ones((), dtype=torch.float64, requires_grad=True)
    cr = torch.zeros(4, dtype=torch.float64, requires_grad=True)

    def rating_nll(alpha, beta, bias):
        scores = alpha * log_llm + beta * log_pref + torch.cat([torch.zeros(1, dtype=torch.float64), bias])
        return torch.nn.functional.cross_entropy(scores, target)

    rating_pool, _ = _fit(lambda: rating_nll(ar, br, cr), [ar, br, cr], [0.0, 1.0, 0.0], len(target))
    with torch.no_grad():
        rating_llm_only = float(torch.nn.functional.cross_entropy(log_llm, target))
        rating_pref_only = float(torch.nn.functional.cross_entropy(log_pref, target))
    value = lambda t: float(t.detach())  # noqa: E731
    return Blend(
        watch_llm=value(a), watch_preference=value(b), watch_bias=value(c),
        rating_llm=value(ar), rating_preference=value(br),
        rating_bias=(0.0, *(float(v) for v in cr.detach())),
        llm_decides_leaving=False,
        fitted_on={
            "users": int(len(users)), "watch_examples": int(len(y)), "rating_examples": int(len(target)),
            "watch_nll": {"pooled": watch_pool, "llm_only": watch_llm_only, "preference_only": watch_pref_only},
            # NLL + prior penalty: the pool nests the preference-only model (LLM weight at its centre 0), so its
            # objective can only match or beat that one's (its NLL alone may not: the prior pulls differently).
            "watch_objective": {"pooled": watch_pool_objective, "preference_only": watch_pref_only_objective},
            # Weight x spread of its input: how far each expert moves the watch logit (comparable across experts).
            "watch_effect": {"llm": value(a) * float(x_llm.std()), "preference": value(b) * float(x_pref.std())},
            "rating_nll": {"pooled": rating_pool, "llm_only": rating_llm_only, "preference_only": rating_pref_only},
        },
    )  # fmt: skip


