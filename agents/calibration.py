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

`fit_llm_alone` fits the LLM user's own scale the same way, with no preference model: a
temperature and a bias on each of its two decisions (see its docstring).

Scenarios call `calibrate_on_validation`, which reads only a split's validation part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class CalibrationExamples:
    """What a calibration fits on: the two experts' opinions of sampled held-out examples, beside the truth."""

    users: int
    llm_logit: torch.Tensor
    """The LLM's logit of P(Yes) to watch, per shown item (positives and sampled negatives)."""
    preference_logit: torch.Tensor
    """The statistical user's watch logit for the same items."""
    label: torch.Tensor
    """1 where the user really had the item."""
    weight: torch.Tensor
    """How many items each example stands for (see the module docstring)."""
    log_llm_levels: torch.Tensor
    """log P_llm(1..5) for each positive's rating."""
    log_preference_levels: torch.Tensor
    """log P_preference(1..5) for the same ratings."""
    rating: torch.Tensor
    """The real rating minus one (a class index)."""

    def watch_nll(self, logits: torch.Tensor) -> torch.Tensor:
        """Weighted mean cross-entropy of watch logits against the labels."""
        losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, self.label, reduction="none")
        return (self.weight * losses).sum() / self.weight.sum()

    def rating_nll(self, llm_weight, preference_weight, bias: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the log-linear pool (bias on levels 2..5, level 1's fixed at 0) against the ratings."""
        zero = torch.zeros(1, dtype=torch.float64)
        scores = llm_weight * self.log_llm_levels + preference_weight * self.log_preference_levels + torch.cat([zero, bias])
        return torch.nn.functional.cross_entropy(scores, self.rating)


def gather_examples(
    kit: UserKit,
    held_out: pd.DataFrame,
    llm,
    *,
    n_users: int = 50,
    positives_per_user: int = 4,
    negatives: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> CalibrationExamples:
    """Ask `llm` (as each sampled user) about held-out positives and sampled negatives; unusable answers are left out."""
    rng = np.random.default_rng(seed)
    users = np.unique(held_out["user"].to_numpy())
    users = np.sort(rng.choice(users, min(n_users, len(users)), replace=False))
    n_items = kit.history.n_items
    by_user = held_out.groupby("user")[["item", "rating"]].apply(lambda f: (f["item"].to_numpy(), f["rating"].to_numpy())).to_dict()
    llm_logit, pref_logit, label, weight = [], [], [], []
    llm_levels, pref_levels, real_rating = [], [], []
    for u in tqdm(users.tolist(), desc="calibrating users", disable=not progress):
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
    tensor = lambda parts: torch.as_tensor(np.concatenate(parts), dtype=torch.float64)  # noqa: E731
    return CalibrationExamples(
        users=int(len(users)), llm_logit=tensor(llm_logit), preference_logit=tensor(pref_logit), label=tensor(label),
        weight=tensor(weight), log_llm_levels=torch.log(tensor(llm_levels)), log_preference_levels=torch.log(tensor(pref_levels)),
        rating=torch.as_tensor(np.concatenate(real_rating) - 1),
    )  # fmt: skip


def _parameter(value: float, size: int = 0) -> torch.Tensor:
    shape = (size,) if size else ()
    return torch.full(shape, value, dtype=torch.float64, requires_grad=True)


def calibrate_blend(kit: UserKit, held_out: pd.DataFrame, llm, **sampling: Any) -> Blend:
    """Fit a hybrid `Blend` for `llm` on `held_out` interactions (never the part you evaluate on). `sampling` takes
    `gather_examples`' keywords: n_users, positives_per_user, negatives, seed, progress."""
    return fit_blend(gather_examples(kit, held_out, llm, **sampling))


def fit_blend(e: CalibrationExamples) -> Blend:
    """The hybrid `Blend` that fits `e` best (maximum a posteriori, see the module docstring)."""
    a, b, c = _parameter(0.0), _parameter(0.0), _parameter(0.0)
    n = len(e.label)
    watch_pool, watch_pool_objective = _fit(lambda: e.watch_nll(a * e.llm_logit + b * e.preference_logit + c), [a, b, c], [0.0, 1.0, 0.0], n)
    # The LLM alone: the LLM user's own calibration (its watch logit rescaled; its ratings as they are).
    alone = fit_llm_alone(e).fitted_on
    b1, c1 = _parameter(1.0), _parameter(0.0)
    watch_pref_only, watch_pref_only_objective = _fit(lambda: e.watch_nll(b1 * e.preference_logit + c1), [b1, c1], [1.0, 0.0], n)

    ar, br, cr = _parameter(0.0), _parameter(1.0), _parameter(0.0, 4)
    rating_pool, _ = _fit(lambda: e.rating_nll(ar, br, cr), [ar, br, cr], [0.0, 1.0, 0.0], len(e.rating))
    with torch.no_grad():
        rating_pref_only = float(torch.nn.functional.cross_entropy(e.log_preference_levels, e.rating))
    value = lambda t: float(t.detach())  # noqa: E731
    return Blend(
        watch_llm=value(a), watch_preference=value(b), watch_bias=value(c),
        rating_llm=value(ar), rating_preference=value(br),
        rating_bias=(0.0, *(float(v) for v in cr.detach())),
        llm_decides_leaving=False,
        fitted_on={
            "users": e.users, "watch_examples": int(n), "rating_examples": int(len(e.rating)),
            "watch_nll": {"pooled": watch_pool, "llm_only": alone["watch_nll"]["llm_calibrated"], "preference_only": watch_pref_only},
            # NLL + prior penalty: the pool nests the preference-only model (LLM weight at its centre 0), so its
            # objective can only match or beat that one's (its NLL alone may not: the prior pulls differently).
            "watch_objective": {"pooled": watch_pool_objective, "preference_only": watch_pref_only_objective},
            # Weight x spread of its input: how far each expert moves the watch logit (comparable across experts).
            "watch_effect": {"llm": value(a) * float(e.llm_logit.std()), "preference": value(b) * float(e.preference_logit.std())},
            "rating_nll": {"pooled": rating_pool, "llm_only": alone["rating_nll"]["llm_as_it_is"], "preference_only": rating_pref_only},
        },
    )  # fmt: skip


def fit_llm_alone(e: CalibrationExamples) -> Blend:
    """The LLM user's own calibration on `e`: a temperature and a bias on its watch logit, a temperature and a bias per
    level on its P(1..5), and no preference model (its weights stay 0).

    It moves no item against another for the same prompt (the watch calibration is monotone), so it changes the LLM's
    scale, not its taste: what it fixes is an LLM that says Yes too often or spreads its ratings too wide. The prior is
    centred on the LLM as it is (weights 1, biases 0). `fitted_on` holds both NLLs, raw and calibrated."""
    a, c = _parameter(1.0), _parameter(0.0)
    watch_calibrated, _ = _fit(lambda: e.watch_nll(a * e.llm_logit + c), [a, c], [1.0, 0.0], len(e.label))
    ar, cr = _parameter(1.0), _parameter(0.0, 4)
    rating_calibrated, _ = _fit(lambda: e.rating_nll(ar, 0.0, cr), [ar, cr], [1.0, 0.0], len(e.rating))
    with torch.no_grad():
        watch_raw = float(e.watch_nll(e.llm_logit))
        rating_raw = float(torch.nn.functional.cross_entropy(e.log_llm_levels, e.rating))
    value = lambda t: float(t.detach())  # noqa: E731
    return Blend(
        watch_llm=value(a), watch_preference=0.0, watch_bias=value(c),
        rating_llm=value(ar), rating_preference=0.0, rating_bias=(0.0, *(float(v) for v in cr.detach())),
        llm_decides_leaving=True,
        fitted_on={
            "users": e.users, "watch_examples": int(len(e.label)), "rating_examples": int(len(e.rating)),
            "watch_nll": {"llm_as_it_is": watch_raw, "llm_calibrated": watch_calibrated},
            "rating_nll": {"llm_as_it_is": rating_raw, "llm_calibrated": rating_calibrated},
        },
    )  # fmt: skip
