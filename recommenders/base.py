"""The contract every recommender (system under test) implements.

A `Recommender` learns from a `Dataset` and ranks items for users::

    rec = build_recommender("bpr", {"dim": 64})      # registry: name + typed, validated parameters
    rec.fit(split.train_dataset(), valid=split.valid) # early stopping on NDCG@10 of `valid`
    page = rec.recommend(users, k=10)                 # top-k ids and scores per user, batched
    scores = rec.score(users)                         # [len(users), n_items], full ranking
    rec.update(new_interactions)                      # feedback between simulation rounds
    rec.save(path); rec = Recommender.load(path)      # identical scores after the round trip

The methods:

* ``fit(dataset, valid=None) -> self``: train on ``dataset.interactions``.
  ``valid`` (optional) is a frame of held-out interactions (columns ``user``,
  ``item``, ...) that happened *after* ``dataset``'s; trained models stop early
  on its full-ranking NDCG@10 and keep their best epoch. Nothing else held out
  may be passed.
* ``score(users, history=None) -> Tensor [len(users), n_items]``: higher is
  better, every item scored. ``history`` is what the model conditions on, one
  time-ordered item array per user; None means the histories the model has seen
  (fit + updates). Sequential and neighbourhood models (SASRec, ItemKNN) read
  it; models whose user state is learnt (BPR, LightGCN) and the baselines
  ignore it. `history_scorer` builds the scorer the evaluator needs, so that on
  the test part the model conditions on train + validation.
* ``recommend(users, k, exclude="seen", candidates=None, history=None)
  -> Recommendations``: the top ``k`` item ids and their scores per user, best
  first. ``exclude`` is ``"seen"`` (each user's history), ``None``, one array
  of ids for every user, or one array per user; an excluded item is never
  returned. ``candidates`` (one array for every user, or one per user)
  restricts the output to those ids. A row with fewer than ``k`` allowed items
  is padded with id -1 and score -inf.
* ``known_items(users) -> list[ndarray]``: per user, the items the model knows
  the user had (fit + updates), which a simulator never shows the user again.
  The default gives the histories the model keeps (what ``exclude="seen"``
  removes); a model that knows more says so here.
* ``update(interactions) -> self``: new feedback (same columns as
  ``Dataset.interactions``) joins the model's data. ``update_mode`` says
  whether it refits in full (``"full"``) or continues from its current state
  (``"incremental"``).
* ``save(directory)`` / ``Recommender.load(directory)``: parameters, learnt
  state and the histories the model has seen; loading needs no dataset.

Every model is seeded by its ``seed`` parameter and deterministic on CPU; it
runs on CUDA when present (``device`` parameter, ``"auto"`` by default).
`check_recommender` (checker.py) verifies all of this for any implementation.
"""

from __future__ import annotations

import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

import numpy as np
import pandas as pd
import torch

from recarena.simulator.data import Dataset
from recarena.simulator.data.dataset import per_user

from .errors import RecommenderError
from .params import Params

ItemSets = Union[np.ndarray, Sequence[np.ndarray], None]
Exclude = Union[Literal["seen"], np.ndarray, Sequence[np.ndarray], None]
_STATE_FILE = "state.pt"
_META_FILE = "recommender.json"


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists: ``items[u, r]`` is the id at rank ``r`` for the u-th user asked (-1 = none), with its score."""

    items: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def user_histories(frame: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Each user's items in `frame`, in time order (ties keep the frame's order)."""
    return per_user(frame, n_users)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with `threads` torch CPU threads (0: leave torch's setting), then restore it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Recommender(ABC):
    """Base class of the contract in this module's docstring.

    Subclasses set ``name``, ``Params`` (a `Params` model) and ``update_mode``,
    and implement `_fit`, `_score`, `_state` and `_restore`; `recommend`,
    `update`, `save` and `load` are shared.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    update_mode: ClassVar[Literal["full", "incremental"]] = "full"

    def __init__(self, params: Params | None = None, **overrides: Any):
        self.params = self.Params.build(self.name, params, overrides)
        self.n_users = 0
        self.n_items = 0
        self.interactions: pd.DataFrame | None = None
        self.histories: list[np.ndarray] = []
        self.device = resolve_device(getattr(self.params, "device", "cpu"))
        self.training_log: dict[str, Any] = {}
        self.dataset: Dataset | None = None  # what fit() saw, kept for refits in update(); not saved

    # ------------------------------------------------------------------ contract
    def fit(self, dataset: Dataset, valid: pd.DataFrame | None = None) -> "Recommender":
        """Train on `dataset`; early-stop on `valid` where the model trains iteratively."""
        if dataset.n_items == 0 or dataset.n_users == 0:
            raise RecommenderError(f"{self.name}: cannot fit on a dataset with no users or no items")
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.dataset = dataset
        self.interactions = dataset.interactions[["user", "item", "rating", "timestamp"]].reset_index(drop=True)
        self.histories = user_histories(self.interactions, self.n_users)
        if valid is not None and len(valid):
            self._check_ids(valid["user"].to_numpy(), valid["item"].to_numpy(), "valid")
        with torch.random.fork_rng(devices=[]), torch_threads(self.params.threads):
            torch.manual_seed(self.params.seed)
            self._fit(dataset, valid if valid is not None and len(valid) else None)
        return self

    def score(self, users: np.ndarray, history: Sequence[np.ndarray] | None = None) -> torch.Tensor:
        """Scores of every item for each of `users` (see the module docstring)."""
        users = self._users(users)
        if history is not None and len(history) != len(users):
            raise RecommenderError(f"{self.name}: history has {len(history)} rows for {len(users)} users")
        if len(users) == 0:
            return torch.empty(0, self.n_items)
        with torch.no_grad(), torch_threads(self.params.threads):
            scores = self._score(users, self._history(users, history))
        return scores.detach().to("cpu", torch.float32)

    def recommend(
        self,
        users: np.ndarray,
        k: int,
        exclude: Exclude = "seen",
        candidates: ItemSets = None,
        history: Sequence[np.ndarray] | None = None,
    ) -> Recommendations:
        """Top-`k` items per user, best first, never an excluded item, only `candidates` if given."""
        users, known, banned, allowed = self._recommend_request(users, k, exclude, candidates, history)
        with torch_threads(self.params.threads):
            fast = self._retrieve(users, known, k, banned) if allowed is None else None
        if fast is not None:
            return fast
        return _top_k(self.score(users, known), k, banned, allowed)

    def _recommend_request(self, users, k: int, exclude: Exclude, candidates: ItemSets, history: Sequence[np.ndarray] | None):
        """`recommend`'s arguments checked (RecommenderError naming the bad one) and resolved: the users, their known
        items, per user the items banned (None: none) and the items allowed (None: all)."""
        users = self._users(users)
        if k < 1:
            raise RecommenderError(f"{self.name}: k must be at least 1, got {k}")
        if isinstance(exclude, str) and exclude != "seen":
            raise RecommenderError(f"{self.name}: exclude must be 'seen', None or item ids, got {exclude!r}")
        known = self._history(users, history)
        banned = self._per_user(exclude if not isinstance(exclude, str) else known, len(users), "exclude") if exclude is not None else None
        allowed = self._per_user(candidates, len(users), "candidates") if candidates is not None else None
        return users, known, banned, allowed

    def known_items(self, users: np.ndarray | Sequence[int]) -> list[np.ndarray]:
        """Per user, the items the model knows the user had (fit + updates); by default its histories, in time order."""
        return [self.histories[u] for u in self._users(np.asarray(users)).tolist()]

    def update(self, interactions: pd.DataFrame) -> "Recommender":
        """Add feedback; refit in full or continue, as `update_mode` says."""
        if self.interactions is None:
            raise RecommenderError(f"{self.name}: update() before fit()")
        if len(interactions) == 0:
            return self
        self._check_ids(interactions["user"].to_numpy(), interactions["item"].to_numpy(), "update")
        frame = interactions.reindex(columns=["user", "item", "rating", "timestamp"])
        frame = frame.fillna({"rating": 1.0, "timestamp": int(self.interactions["timestamp"].max()) if len(self.interactions) else 0})
        frame = frame.astype({"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64})
        self.interactions = pd.concat([self.interactions, frame], ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
        self.histories = user_histories(self.interactions, self.n_users)
        with torch.random.fork_rng(devices=[]), torch_threads(self.params.threads):
            torch.manual_seed(self.params.seed + len(self.interactions))
            self._update(frame)
        return self

    def save(self, directory: str | Path) -> Path:
        """Write the parameters, learnt state and histories into `directory`."""
        if self.interactions is None:
            raise RecommenderError(f"{self.name}: save() before fit()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        frame = self.interactions
        state = {
            "model": self._state(),
            "interactions": {c: torch.from_numpy(frame[c].to_numpy().copy()) for c in ("user", "item", "rating", "timestamp")},
            "n_users": self.n_users,
            "n_items": self.n_items,
        }
        torch.save(state, directory / _STATE_FILE)
        meta = {"name": self.name, "params": self.params.model_dump(mode="json")}
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Recommender":
        """Read what `save` wrote; on the base class the saved name picks the model class."""
        directory = Path(directory)
        meta_path = directory / _META_FILE
        if not meta_path.exists():
            raise RecommenderError(f"{meta_path}: no saved recommender here")
        meta = json.loads(meta_path.read_text())
        target = cls
        if getattr(cls, "name", None) != meta["name"]:
            from .registry import recommender_class

            target = recommender_class(meta["name"])
        model = target(**meta["params"])
        # weights_only: a planted state.pt can hold tensors and plain data, never code that runs on loading
        try:
            state = torch.load(directory / _STATE_FILE, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            first = (str(error).splitlines() or [""])[0][:200]
            raise RecommenderError(f"{directory / _STATE_FILE}: refused, it holds more than tensors and plain data ({first})") from None
        model.n_users, model.n_items = int(state["n_users"]), int(state["n_items"])
        model.interactions = pd.DataFrame({c: v.numpy() for c, v in state["interactions"].items()})
        model.histories = user_histories(model.interactions, model.n_users)
        model._restore(state["model"])
        return model

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _fit(self, dataset: Dataset, valid: pd.DataFrame | None) -> None:
        """Learn from `dataset` (``self.histories`` is ready); seeded by the caller."""

    @abstractmethod
    def _score(self, users: np.ndarray, history: list[np.ndarray]) -> torch.Tensor:
        """``[len(users), n_items]`` scores; `history` is each user's known items."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Learnt state as tensors and plain values (what `_restore` takes back)."""

    @abstractmethod
    def _restore(self, state: dict[str, Any]) -> None:
        """Take back what `_state` returned."""

    def _update(self, new: pd.DataFrame) -> None:
        """Default: a full refit on everything seen so far (no early stopping)."""
        base = self.dataset or Dataset(name=self.name, interactions=self.interactions, items=_blank(self.n_items), users=_blank(self.n_users))
        self._fit(base.with_interactions(self.interactions), None)

    def _after_epoch(self) -> None:
        """Called by the training loop after each epoch and when training ends: drop caches."""

    def _retrieve(self, users: np.ndarray, history: list[np.ndarray], k: int, banned: list[np.ndarray] | None) -> Recommendations | None:
        """A faster top-k path (a faiss index); None falls back to scoring every item."""
        return None

    # ------------------------------------------------------------------ helpers
    def _users(self, users: np.ndarray) -> np.ndarray:
        if self.interactions is None:
            raise RecommenderError(f"{self.name}: fit() or load() before scoring")
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            bad = users[(users < 0) | (users >= self.n_users)][0]
            raise RecommenderError(f"{self.name}: user id {bad} out of range 0..{self.n_users - 1}")
        return users

    def _history(self, users: np.ndarray, history: Sequence[np.ndarray] | None) -> list[np.ndarray]:
        if history is None:
            return [self.histories[u] for u in users.tolist()]
        rows = [np.asarray(h, dtype=np.int64).reshape(-1) for h in history]
        for row in rows:
            if len(row) and (row.min() < 0 or row.max() >= self.n_items):
                raise RecommenderError(f"{self.name}: history holds an item id outside 0..{self.n_items - 1}")
        return rows

    def _per_user(self, sets: Any, n: int, what: str) -> list[np.ndarray]:
        if isinstance(sets, np.ndarray) and sets.dtype != object and sets.ndim == 1:
            shared = sets.astype(np.int64)
            rows = [shared] * n
        else:
            rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sets]
            if len(rows) != n:
                raise RecommenderError(f"{self.name}: {what} has {len(rows)} rows for {n} users")
        for row in rows:
            if len(row) and (row.min() < 0 or row.max() >= self.n_items):
                raise RecommenderError(f"{self.name}: {what} holds an item id outside 0..{self.n_items - 1}")
        return rows

    def _check_ids(self, users: np.ndarray, items: np.ndarray, what: str) -> None:
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise RecommenderError(f"{self.name}: {what} holds a user id outside 0..{self.n_users - 1}")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise RecommenderError(f"{self.name}: {what} holds an item id outside 0..{self.n_items - 1}")


def _blank(n: int) -> pd.DataFrame:
    return pd.DataFrame(index=pd.RangeIndex(n))


def _top_k(scores: torch.Tensor, k: int, banned: list[np.ndarray] | None, allowed: list[np.ndarray] | None) -> Recommendations:
    """Top-k of a full score matrix after masking; pads with -1 / -inf."""
    n, n_items = scores.shape
    masked = torch.zeros(n, n_items, dtype=torch.bool)
    if allowed is not None:
        rows = np.repeat(np.arange(n), [len(a) for a in allowed])
        cols = np.concatenate(allowed) if allowed else np.array([], np.int64)
        masked[:] = True
        masked[torch.as_tensor(rows), torch.as_tensor(cols, dtype=torch.long)] = False
    if banned is not None:
        rows = np.repeat(np.arange(n), [len(b) for b in banned])
        cols = np.concatenate(banned) if banned else np.array([], np.int64)
        masked[torch.as_tensor(rows), torch.as_tensor(cols, dtype=torch.long)] = True
    # A model may itself score an item -inf; it still ranks above every masked item.
    order_key = torch.nan_to_num(scores, nan=-3.0e38, neginf=-3.0e38)  # a new tensor: `scores` stays as the model gave it
    order_key.masked_fill_(masked, -torch.inf)  # in place: one [users, items] pass fewer than torch.where
    top = torch.topk(order_key, min(k, n_items), dim=1)
    ids = top.indices.numpy().astype(np.int64)
    values = torch.gather(scores, 1, top.indices).numpy().astype(np.float32)
    invalid = torch.gather(masked, 1, top.indices).numpy()
    ids[invalid] = -1
    values[invalid] = -np.inf
    return _pad(ids, values, k)


def _pad(ids: np.ndarray, values: np.ndarray, k: int) -> Recommendations:
    if ids.shape[1] < k:
        extra = k - ids.shape[1]
        ids = np.concatenate([ids, np.full((len(ids), extra), -1, np.int64)], 1)
        values = np.concatenate([values, np.full((len(values), extra), -np.inf, np.float32)], 1)
    return Recommendations(ids, values)
