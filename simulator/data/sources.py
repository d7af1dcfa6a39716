"""Where datasets come from: built-in names, downloads, folders, and the parquet cache.

`load_dataset` is the one entry point. ``"ml-100k"`` is read from the RecBole
1.2.1 wheel on PyPI (fetched with pip, never imported), ``"ml-1m"`` from the
official GroupLens zip, and anything else is a folder whose format is detected.
Every load after the first reads the parquet cache under `recarena_home()`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .dataset import Dataset
from .errors import DataError
from .formats import FORMAT_READERS, detect_format, read_atomic, read_ml1m

log = logging.getLogger(__name__)

RECBOLE_WHEEL = "recbole==1.2.1"
ML100K_MEMBERS = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
BUILTIN_DATASETS = ("ml-100k", "ml-1m")


def recarena_home() -> Path:
    """Where recarena keeps downloads and caches: ``$RECARENA_HOME`` or ``~/.cache/recarena``."""
    return Path(os.environ.get("RECARENA_HOME", Path.home() / ".cache" / "recarena")).expanduser()


def fetch_ml100k(home: Path | None = None) -> Path:
    """The folder holding ml-100k's RecBole atomic files, fetching the RecBole wheel once."""
    folder = (home or recarena_home()) / "raw" / "ml-100k"
    if all((folder / m).exists() for m in ML100K_MEMBERS):
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, RECBOLE_WHEEL]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("recbole-*.whl"))
        if done.returncode != 0 or not wheels:
            reason = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise DataError(RECBOLE_WHEEL, f"could not fetch the wheel that carries ml-100k with pip: {reason}")
        _extract(wheels[0], {f"recbole/dataset_example/ml-100k/{m}": m for m in ML100K_MEMBERS}, folder)
    return folder


def fetch_ml1m(home: Path | None = None, url: str = ML1M_URL) -> Path:
    """The folder holding ml-1m's ``.dat`` files, downloading the official zip once."""
    folder = (home or recarena_home()) / "raw" / "ml-1m"
    members = ("ratings.dat", "movies.dat", "users.dat")
    if all((folder / m).exists() for m in members):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        archive = Path(tmp) / "ml-1m.zip"
        try:
            _download(url, archive)
        except (urllib.error.URLError, OSError) as error:
            raise DataError(url, f"download failed ({error}); download it by hand and pass its folder instead") from None
        _extract(archive, {f"ml-1m/{m}": m for m in members}, folder)
    return folder


def _download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {Path(url).name}") as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def _extract(archive: Path, members: dict[str, str], folder: Path) -> None:
    """Copy `members` (name in archive -> file name) out of a zip into `folder`, all or nothing."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            names = set(zipped.namelist())
            missing = [m for m in members if m not in names]
            if missing:
                raise DataError(archive, f"archive lacks {missing[0]}")
            staging = folder.with_name(folder.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for inner, name in members.items():
                with zipped.open(inner) as src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile:
        raise DataError(archive, "not a valid zip archive") from None
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _folder_fingerprint(folder: Path) -> str:
    """Changes whenever a file in `folder` is added, removed or rewritten."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_dataset(source: str | Path, *, home: Path | None = None, refresh: bool = False, ml1m_url: str = ML1M_URL) -> Dataset:
    """Load a dataset by built-in name (``"ml-100k"``, ``"ml-1m"``) or from a folder.

    A folder may hold RecBole atomic files, or the GroupLens ml-100k, ml-1m or
    ml-latest(-small) files. The parsed dataset is cached as parquet; `refresh`
    ignores the cache. Errors are `DataError`s that name the file and line.
    """
    home = home or recarena_home()
    name = str(source)
    if name in BUILTIN_DATASETS:
        cache = home / "datasets" / name
        if name == "ml-100k":
            build = lambda: read_atomic(fetch_ml100k(home), name="ml-100k")  # noqa: E731
        else:
            build = lambda: read_ml1m(fetch_ml1m(home, ml1m_url))  # noqa: E731
    else:
        folder = Path(source).expanduser()
        if not folder.exists():
            raise DataError(folder, f"no such folder, and not a built-in dataset ({', '.join(BUILTIN_DATASETS)})")
        reader = FORMAT_READERS[detect_format(folder)]
        cache = home / "datasets" / f"{folder.resolve().name}-{_folder_fingerprint(folder)}"
        build = lambda: reader(folder)  # noqa: E731

    if not refresh and (cache / "meta.json").exists():
        try:
            return Dataset.load(cache)
        except Exception as error:  # a damaged cache is rebuilt from the source, never trusted
            log.warning("rebuilding the dataset cache at %s: %s", cache, error)
    dataset = build()
    shutil.rmtree(cache, ignore_errors=True)
    dataset.save(cache)
    return dataset
