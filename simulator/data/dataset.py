"""The `Dataset`: users, items and their interactions, with contiguous integer ids.

Every loader (MovieLens releases, RecBole atomic files, the synthetic generator)
builds its frames and passes them to `Dataset.from_frames`, which assigns the
contiguous ids, validates the references and sorts interactions by time. The
rest of recarena only ever sees this object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

#: Bumped whenever the parquet layout changes, so stale caches are rebuilt.
CACHE_FORMAT_VERSION = 1

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")
ITEM_COLUMNS = ("raw_id", "title", "year", "genres", "text")
USER_COLUMNS = ("raw_id", "age", "gender", "occupation", "zip_code")


@dataclass(frozen=True)
class DatasetInfo:
    """The shape of a dataset, as `recarena data info` prints it."""

    name: str
    n_users: int
    n_items: int
    n_interactions: int
    density: float
    rating_histogram: dict[float, int]
    first_timestamp: pd.Timestamp | None
    last_timestamp: pd.Timestamp | None

    def to_text(self) -> str:
        lines = [
            f"dataset        {self.name}",
            f"users          {self.n_users:,}",
            f"items          {self.n_items:,}",
            f"interactions   {self.n_interactions:,}",
            f"density        {self.density:.4%}",
        ]
        if self.first_timestamp is not None:
            days = (self.last_timestamp - self.first_timestamp).days
            lines.append(f"time span      {self.first_timestamp:%Y-%m-%d} .. {self.last_timestamp:%Y-%m-%d} ({days} days)")
        if self.rating_histogram:
            lines.append("ratings")
            top = max(self.rating_histogram.values())
            for rating, count in self.rating_histogram.items():
                bar = "#" * max(1, round(40 * count / top))
                lines.append(f"  {rating:>4g}  {count:>9,}  {bar}")
        return "\n".join(lines)


@dataclass
class Dataset:
    """Users, items and interactions with contiguous integer ids.

    Attributes:
        name: a short name for reports (``"ml-100k"``).
        interactions: one row per interaction, columns ``user`` (int32, 0..n_users-1),
            ``item`` (int32, 0..n_items-1), ``rating`` (float32; 1.0 for implicit data)
            and ``timestamp`` (int64 seconds since the epoch). Sorted by time; rows with
            the same timestamp keep the order they had in the source file.
        items: indexed by the contiguous item id; columns ``raw_id`` (str, the id in the
            source), ``title`` (str), ``year`` (nullable Int32), ``genres`` (list of str)
            and ``text`` (str: what prompts and embeddings see).
        users: indexed by the contiguous user id; columns ``raw_id`` (str), ``age``
            (nullable Int32), ``gender``, ``occupation``, ``zip_code`` (str or missing).
        has_ratings: False for implicit-feedback data, where every rating is 1.0.
        extra: anything a generator wants to keep beside the data (the synthetic
            generator keeps its ground truth here). Not cached.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    has_ratings: bool = True
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _genre_matrix: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frames(
        cls,
        name: str,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        users: pd.DataFrame | None = None,
        *,
        has_ratings: bool = True,
        source: dict[str, str] | None = None,
    ) -> "Dataset":
        """Build a dataset from raw-id frames.

        ``interactions`` has columns ``user``, ``item`` (raw ids), ``rating``, ``timestamp``
        and, optionally, ``line`` (the 1-based source line, used in error messages).
        ``items`` has ``raw_id`` and any of ``title``, ``year``, ``genres``. ``users`` has
        ``raw_id`` and any of the demographic columns; users that appear only in the
        interactions are added with missing demographics. ``source`` names the file each
        frame came from (keys ``interactions``, ``items``, ``users``) for error messages.
        """
        source = source or {}
        items = build_item_frame(items, source.get("items", "items"))
        item_ids = pd.Index(items["raw_id"])
        inter_raw_users = interactions["user"].astype(str)
        if users is None:
            users = pd.DataFrame({"raw_id": pd.unique(inter_raw_users)})
        users = build_user_frame(users, inter_raw_users, source.get("users", "users"))
        user_ids = pd.Index(users["raw_id"])

        item_codes = item_ids.get_indexer(interactions["item"].astype(str))
        if (item_codes < 0).any():
            bad = int(np.flatnonzero(item_codes < 0)[0])
            line = int(interactions["line"].iloc[bad]) if "line" in interactions else None
            raise DataError(
                source.get("interactions", "interactions"),
                f"unknown item id {interactions['item'].iloc[bad]!r} (not in the item file)",
                line=line,
                field="item",
            )
        user_codes = user_ids.get_indexer(inter_raw_users)
        frame = pd.DataFrame(
            {
                "user": user_codes.astype(np.int32),
                "item": item_codes.astype(np.int32),
                "rating": interactions["rating"].to_numpy(dtype=np.float32),
                "timestamp": interactions["timestamp"].to_numpy(dtype=np.int64),
            }
        )
        frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
        return cls(name=name, interactions=frame, items=items, users=users, has_ratings=has_ratings)

    def with_interactions(self, interactions: pd.DataFrame, name: str | None = None) -> "Dataset":
        """The same users and items with other interactions (a training split, say)."""
        other = Dataset(
            name=name or self.name,
            interactions=interactions.reset_index(drop=True),
            items=self.items,
            users=self.users,
            has_ratings=self.has_ratings,
            extra=self.extra,
        )
        other._genre_matrix = self._genre_matrix  # the same items: the same matrix
        return other

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    def user_index(self, raw_id: str) -> int:
        """The contiguous id of a raw user id; KeyError names the id if unknown."""
        return _lookup(self.users, "user", raw_id)

    def item_index(self, raw_id: str) -> int:
        """The contiguous id of a raw item id; KeyError names the id if unknown."""
        return _lookup(self.items, "item", raw_id)

    def genre_vocabulary(self) -> list[str]:
        """Every genre that some item has, sorted."""
        return sorted({g for genres in self.items["genres"] for g in genres})

    def genre_matrix(self) -> np.ndarray:
        """``[n_items, n_genres]`` genre mass: each item spreads one unit evenly over its genres.

        Columns follow `genre_vocabulary` (sorted); an item without genres has a zero row; a
        catalogue without genres has one all-zero column. Every genre figure (diversity, filter
        bubbles, genre mixes) and the preference model's genre factors read this one matrix; the
        genre indicators are ``genre_matrix() > 0``. Built once per dataset (read-only)."""
        if self._genre_matrix is None:
            vocabulary = {g: j for j, g in enumerate(self.genre_vocabulary())}
            matrix = np.zeros((self.n_items, max(1, len(vocabulary))))
            for i, genres in enumerate(self.items["genres"]):
                for g in genres:
                    matrix[i, vocabulary[g]] += 1.0 / len(genres)
            matrix.flags.writeable = False
            self._genre_matrix = matrix
        return self._genre_matrix

    def user_histories(self) -> list[np.ndarray]:
        """Each user's items in time order (one int64 array per user; empty where none)."""
        return per_user(self.interactions, self.n_users)

    def fingerprint(self) -> str:
        """sha256 of what the data says, whatever path it was read from: every interaction (user, item,
        rating, timestamp, in order), the users' and items' raw ids and each item's text. A run records it
        so that a resume over edited data is refused (`recarena.simulator.rundir`)."""
        digest = hashlib.sha256()
        frame = self.interactions
        for column, dtype in (("user", "<i4"), ("item", "<i4"), ("rating", "<f4"), ("timestamp", "<i8")):
            digest.update(np.ascontiguousarray(frame[column].to_numpy(), dtype=dtype).tobytes())
        for texts in (self.users["raw_id"], self.items["raw_id"], self.items["text"]):
            digest.update("\x1f".join(map(str, texts)).encode() + b"\x1e")  # unit and record separators: no two lists join alike
        return digest.hexdigest()

    def describe(self) -> DatasetInfo:
        n = self.n_interactions
        hist: dict[float, int] = {}
        if self.has_ratings and n:
            counts = self.interactions["rating"].value_counts().sort_index()
            hist = {float(r): int(c) for r, c in counts.items()}
        ts = self.interactions["timestamp"]
        first = pd.Timestamp(int(ts.min()), unit="s") if n else None
        last = pd.Timestamp(int(ts.max()), unit="s") if n else None
        density = n / (self.n_users * self.n_items) if self.n_users and self.n_items else 0.0
        return DatasetInfo(self.name, self.n_users, self.n_items, n, density, hist, first, last)

    # ------------------------------------------------------------------ parquet cache
    def save(self, directory: str | Path) -> None:
        """Write the dataset as three parquet files and a small JSON header."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(directory / "interactions.parquet", index=False)
        self.items.to_parquet(directory / "items.parquet", index=False)
        self.users.to_parquet(directory / "users.parquet", index=False)
        meta = {"format": CACHE_FORMAT_VERSION, "name": self.name, "has_ratings": self.has_ratings}
        # The header goes last: a crash mid-save leaves no header, so no half cache is ever read.
        (directory / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path) -> "Dataset":
        """Read what `save` wrote; DataError if it is missing or of another format version."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise DataError(meta_path, "no cached dataset here")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT_VERSION:
            raise DataError(meta_path, f"cache format {meta.get('format')} is not {CACHE_FORMAT_VERSION}")
        items = pd.read_parquet(directory / "items.parquet")
        items["genres"] = [list(g) for g in items["genres"]]
        return cls(
            name=meta["name"],
            interactions=pd.read_parquet(directory / "interactions.parquet"),
            items=items,
            users=pd.read_parquet(directory / "users.parquet"),
            has_ratings=bool(meta["has_ratings"]),
        )


def per_user(frame: pd.DataFrame, n_users: int, column: str = "item") -> list[np.ndarray]:
    """Each user's `column` values in `frame`, in time order (ties keep the frame's order).

    Item and user columns come back as int64 arrays, others in their own dtype."""
    users = frame["user"].to_numpy()
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), users))
    values = frame[column].to_numpy()
    values = (values.astype(np.int64) if column in ("item", "user") else values)[order]
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    return [values[bounds[u] : bounds[u + 1]] for u in range(n_users)]


def _lookup(frame: pd.DataFrame, what: str, raw_id: str) -> int:
    hits = np.flatnonzero(frame["raw_id"].to_numpy() == str(raw_id))
    if len(hits) == 0:
        raise KeyError(f"unknown {what} id {raw_id!r}")
    return int(hits[0])


def item_text(title: str, year: Any, genres: list[str]) -> str:
    """The one-line description of an item that prompts and embeddings use."""
    head = title if pd.isna(year) else f"{title} ({int(year)})"
    return f"{head}; genres: {', '.join(genres)}" if genres else head


def build_item_frame(items: pd.DataFrame, path: str) -> pd.DataFrame:
    if items["raw_id"].duplicated().any():
        dup = items["raw_id"][items["raw_id"].duplicated()].iloc[0]
        raise DataError(path, f"item id {dup!r} appears twice", field="raw_id")
    out = pd.DataFrame({"raw_id": items["raw_id"].astype(str).to_numpy()})
    out["title"] = items["title"].fillna("").astype(str).to_numpy() if "title" in items else out["raw_id"]
    out["year"] = pd.array(items["year"], dtype="Int32") if "year" in items else pd.array([pd.NA] * len(out), dtype="Int32")
    out["genres"] = [list(g) for g in items["genres"]] if "genres" in items else [[] for _ in range(len(out))]
    out["text"] = [item_text(t, y, g) for t, y, g in zip(out["title"], out["year"], out["genres"])]
    return out


def build_user_frame(users: pd.DataFrame, inter_users: pd.Series, path: str) -> pd.DataFrame:
    users = users.copy()
    users["raw_id"] = users["raw_id"].astype(str)
    if users["raw_id"].duplicated().any():
        dup = users["raw_id"][users["raw_id"].duplicated()].iloc[0]
        raise DataError(path, f"user id {dup!r} appears twice", field="raw_id")
    missing = pd.Index(pd.unique(inter_users)).difference(pd.Index(users["raw_id"]), sort=False)
    if len(missing):
        users = pd.concat([users, pd.DataFrame({"raw_id": missing.to_numpy()})], ignore_index=True)
    out = pd.DataFrame({"raw_id": users["raw_id"].to_numpy()})
    out["age"] = pd.array(users["age"], dtype="Int32") if "age" in users else pd.array([pd.NA] * len(out), dtype="Int32")
    for column in ("gender", "occupation", "zip_code"):
        values = users[column] if column in users else pd.Series([None] * len(out))
        out[column] = pd.array([None if pd.isna(v) else str(v) for v in values], dtype="string")
    return out
