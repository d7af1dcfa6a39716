"""Readers for the on-disk formats: RecBole atomic files and the MovieLens releases.

Each reader takes a folder and returns a `Dataset`; `detect_format` says which
reader a folder needs from the files it holds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError
from .tables import Table, read_table

_YEAR_IN_TITLE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


# The rating scales of the releases: (lowest, highest, step). Simulated users rate on 1-5 stars, so a
# rating off its file's scale is a broken file, refused rather than clipped into a taste it never said.
WHOLE_STARS = (1.0, 5.0, 1.0)
HALF_STARS = (0.5, 5.0, 0.5)
ATOMIC_SCALE = (0.5, 5.0, None)
"""RecBole atomic files: any rating from half a star to five stars."""


def _ratings(table: Table, name: str, scale: tuple[float, float, float | None]) -> np.ndarray:
    """Column `name` as ratings; DataError at the first one off `scale` (range, and step where the release has one)."""
    values = table.numbers(name, np.float64)
    low, high, step = scale
    off = ~((values >= low) & (values <= high))
    if step is not None:
        off |= np.abs((values - low) / step - np.round((values - low) / step)) > 1e-9
    if off.any():
        row = int(np.flatnonzero(off)[0])
        steps = f" in steps of {step:g}" if step is not None else ""
        raise DataError(table.path, f"rating {table.columns[name][row]!r} is off the scale {low:g}-{high:g}{steps}",
                        line=int(table.lines[row]), field=name)  # fmt: skip
    return values.astype(np.float32)


def _interactions(table: Table, user: str, item: str, rating: str | None, timestamp: str | None,
                  scale: tuple[float, float, float | None]) -> pd.DataFrame:
    table.require(user, item)
    n = len(table)
    return pd.DataFrame(
        {
            "user": table.columns[user],
            "item": table.columns[item],
            "rating": _ratings(table, rating, scale) if rating and rating in table.columns else np.ones(n, np.float32),
            # Without timestamps the file order is the only order there is.
            "timestamp": table.numbers(timestamp, np.int64) if timestamp and timestamp in table.columns else np.arange(n),
            "line": table.lines,
        }
    )


def _split_title_year(titles: list[str]) -> tuple[list[str], list[int | None]]:
    names, years = [], []
    for title in titles:
        match = _YEAR_IN_TITLE.match(title)
        names.append(match.group(1) if match else title)
        years.append(int(match.group(2)) if match else None)
    return names, years


def _ages(table: Table, column: str) -> list[int | None]:
    return [int(float(a)) if a.replace(".", "", 1).isdigit() else None for a in table.columns[column]]


# ---------------------------------------------------------------------- RecBole atomic files
_ATOMIC_ALIASES = {
    "title": ("movie_title", "title", "item_name", "name"),
    "year": ("release_year", "year"),
    "genres": ("class", "genre", "genres", "categories", "category"),
}


def _atomic_table(path: Path) -> Table:
    table = read_table(path, "\t")
    # Headers are typed (`rating:float`); the type matters only for token_seq fields. An untyped header
    # (`user_id item_id`) is another format, or a file RecBole itself would misread: refused, not guessed.
    renamed = {}
    for header, values in table.columns.items():
        name, _, kind = header.partition(":")
        if not kind:
            raise DataError(path, f"header {header!r} has no type; RecBole atomic headers are NAME:TYPE (e.g. user_id:token, rating:float)",
                            line=1, field=name)  # fmt: skip
        if kind not in ("token", "token_seq", "float", "float_seq"):
            raise DataError(path, f"unknown field type {kind!r} in header {header!r}", line=1, field=name)
        renamed[name] = values
    table.columns = renamed
    return table


def read_atomic(folder: str | Path, name: str | None = None) -> Dataset:
    """A RecBole atomic-file dataset: ``NAME.inter`` and, if present, ``NAME.item`` and ``NAME.user``."""
    folder = Path(folder)
    inter_files = sorted(folder.glob("*.inter"))
    if not inter_files:
        raise DataError(folder, "no .inter file in this folder")
    inter_path = inter_files[0]
    stem = inter_path.stem
    inter = _atomic_table(inter_path)
    interactions = _interactions(inter, "user_id", "item_id", "rating", "timestamp", ATOMIC_SCALE)

    item_path = folder / f"{stem}.item"
    if item_path.exists():
        table = _atomic_table(item_path)
        table.require("item_id")
        items = pd.DataFrame({"raw_id": table.columns["item_id"]})
        for target, aliases in _ATOMIC_ALIASES.items():
            source = next((a for a in aliases if a in table.columns), None)
            if source is None:
                continue
            values = table.columns[source]
            if target == "year":
                items["year"] = [int(v) if v.isdigit() else None for v in values]
            elif target == "genres":
                items["genres"] = [v.split() for v in values]
            else:
                items[target] = values
    else:
        items = pd.DataFrame({"raw_id": pd.unique(interactions["item"])})

    users = None
    user_path = folder / f"{stem}.user"
    if user_path.exists():
        table = _atomic_table(user_path)
        table.require("user_id")
        users = pd.DataFrame({"raw_id": table.columns["user_id"]})
        for column in ("gender", "occupation", "zip_code"):
            if column in table.columns:
                users[column] = table.columns[column]
        if "age" in table.columns:
            users["age"] = _ages(table, "age")

    return Dataset.from_frames(
        name or stem,
        interactions,
        items,
        users,
        has_ratings="rating" in inter.columns,
        source={"interactions": str(inter_path), "items": str(item_path), "users": str(user_path)},
    )


def write_atomic(dataset: Dataset, folder: str | Path, name: str | None = None, *, interactions: pd.DataFrame | None = None,
                 extra_columns: tuple[str, ...] = ()) -> Path:
    """Write RecBole atomic files ``NAME.inter``, ``NAME.item``, ``NAME.user`` into `folder`; returns the .inter path.

    `interactions` (default: the dataset's own) has the contiguous ids of ``Dataset.interactions``;
    the files carry the raw ids, so `read_atomic` gives back the same users, items and interactions.
    `extra_columns` of `interactions` (a provenance column, say) are written as ``token`` fields,
    which RecBole loads and `read_atomic` ignores. Rows keep their order (readers here sort by time
    stably, so rows with equal timestamps keep it too). Genres must not contain spaces (a
    ``token_seq`` is space-separated).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or dataset.name
    frame = dataset.interactions if interactions is None else interactions
    for column in extra_columns:
        if column not in frame:
            raise DataError(folder / f"{name}.inter", "no such column to write", field=column)
    def clean(values) -> list[str]:  # tabs and newlines would break the file's rows
        return [str(v).replace("\t", " ").replace("\n", " ") for v in values]

    inter = {"user_id:token": dataset.users["raw_id"].to_numpy()[frame["user"].to_numpy()],
             "item_id:token": dataset.items["raw_id"].to_numpy()[frame["item"].to_numpy()],
             "rating:float": [f"{r:g}" for r in frame["rating"].to_numpy(np.float64)],
             "timestamp:float": frame["timestamp"].to_numpy(np.int64)}  # fmt: skip
    inter.update({f"{c}:token": clean(frame[c]) for c in extra_columns})
    path = folder / f"{name}.inter"
    pd.DataFrame(inter).to_csv(path, sep="\t", index=False)
    items = dataset.items
    pd.DataFrame({"item_id:token": items["raw_id"], "movie_title:token_seq": clean(items["title"]),
                  "release_year:token": ["" if pd.isna(y) else str(int(y)) for y in items["year"]],
                  "class:token_seq": [" ".join(g) for g in items["genres"]]}).to_csv(folder / f"{name}.item", sep="\t", index=False)  # fmt: skip
    users = dataset.users
    pd.DataFrame({"user_id:token": users["raw_id"],
                  **{f"{c}:token": ["" if pd.isna(v) else str(v) for v in users[c]] for c in ("age", "gender", "occupation", "zip_code")}},
                 ).to_csv(folder / f"{name}.user", sep="\t", index=False)  # fmt: skip
    return path


# ---------------------------------------------------------------------- GroupLens ml-100k
_ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def read_grouplens_100k(folder: str | Path) -> Dataset:
    """The GroupLens ml-100k release: ``u.data``, ``u.item``, ``u.user``."""
    folder = Path(folder)
    inter = read_table(folder / "u.data", "\t", ["user", "item", "rating", "timestamp"])
    interactions = _interactions(inter, "user", "item", "rating", "timestamp", WHOLE_STARS)

    item_names = ["raw_id", "title", "release_date", "video_release_date", "url"] + _ML100K_GENRES
    table = read_table(folder / "u.item", "|", item_names, encoding="latin-1")
    titles, years = _split_title_year(table.columns["title"])
    flags = np.array([table.columns[g] for g in _ML100K_GENRES]) == "1"
    genres = [[g for g, on in zip(_ML100K_GENRES, flags[:, i]) if on and g != "unknown"] for i in range(len(table))]
    items = pd.DataFrame({"raw_id": table.columns["raw_id"], "title": titles, "year": years, "genres": genres})

    users = _demographics(folder / "u.user", "|", ["raw_id", "age", "gender", "occupation", "zip_code"])
    return _from_files("ml-100k", folder, ("u.data", "u.item", "u.user"), interactions, items, users)


def _from_files(name: str, folder: Path, files: tuple[str, str, str], interactions, items, users) -> Dataset:
    """`Dataset.from_frames`, with the source files named for error messages."""
    source = dict(zip(("interactions", "items", "users"), (str(folder / f) for f in files)))
    return Dataset.from_frames(name, interactions, items, users, source=source)


def _demographics(path: Path, sep: str, names: list[str]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    table = read_table(path, sep, names, encoding="latin-1")
    users = pd.DataFrame({c: table.columns[c] for c in names if c != "age"})
    users["age"] = _ages(table, "age")
    return users


# ---------------------------------------------------------------------- ml-1m
_ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
]  # fmt: skip


def read_ml1m(folder: str | Path) -> Dataset:
    """The GroupLens ml-1m release: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated)."""
    folder = Path(folder)
    inter = read_table(folder / "ratings.dat", "::", ["user", "item", "rating", "timestamp"])
    interactions = _interactions(inter, "user", "item", "rating", "timestamp", WHOLE_STARS)
    table = read_table(folder / "movies.dat", "::", ["raw_id", "title", "genres"], encoding="latin-1")
    titles, years = _split_title_year(table.columns["title"])
    genres = [[g for g in cell.split("|") if g] for cell in table.columns["genres"]]
    items = pd.DataFrame({"raw_id": table.columns["raw_id"], "title": titles, "year": years, "genres": genres})
    users = _demographics(folder / "users.dat", "::", ["raw_id", "gender", "age", "occupation", "zip_code"])
    if users is not None:
        # ml-1m codes occupations as numbers; the README's list turns them back into words.
        users["occupation"] = [
            _ML1M_OCCUPATIONS[int(o)] if o.isdigit() and int(o) < len(_ML1M_OCCUPATIONS) else o
            for o in users["occupation"]
        ]
    return _from_files("ml-1m", folder, ("ratings.dat", "movies.dat", "users.dat"), interactions, items, users)


# ---------------------------------------------------------------------- ml-latest(-small)
def read_ml_latest(folder: str | Path) -> Dataset:
    """The GroupLens ml-latest and ml-latest-small releases: ``ratings.csv``, ``movies.csv``."""
    folder = Path(folder)
    inter = read_table(folder / "ratings.csv", ",")
    interactions = _interactions(inter, "userId", "movieId", "rating", "timestamp", HALF_STARS)
    table = read_table(folder / "movies.csv", ",")
    table.require("movieId", "title")
    titles, years = _split_title_year(table.columns["title"])
    raw_genres = table.columns.get("genres", [""] * len(table))
    genres = [[g for g in cell.split("|") if g and g != "(no genres listed)"] for cell in raw_genres]
    items = pd.DataFrame({"raw_id": table.columns["movieId"], "title": titles, "year": years, "genres": genres})
    return Dataset.from_frames(
        folder.name or "ml-latest",
        interactions,
        items,
        source={"interactions": str(folder / "ratings.csv"), "items": str(folder / "movies.csv")},
    )


# ---------------------------------------------------------------------- detection
FORMAT_READERS = {
    "atomic": read_atomic,
    "ml-100k": read_grouplens_100k,
    "ml-1m": read_ml1m,
    "ml-latest": read_ml_latest,
}


def detect_format(folder: str | Path) -> str:
    """Which of `FORMAT_READERS` reads `folder`, judged by the files in it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder (give the folder that holds the dataset's files)")
    if (folder / "u.data").exists():
        return "ml-100k"
    if (folder / "ratings.dat").exists():
        return "ml-1m"
    if (folder / "ratings.csv").exists():
        return "ml-latest"
    if any(folder.glob("*.inter")):
        return "atomic"
    raise DataError(
        folder,
        "no known dataset files (expected u.data, ratings.dat, ratings.csv or a RecBole .inter file)",
    )
