"""Datasets: loading, parsing, caching and generating users, items and interactions."""

from .dataset import Dataset, DatasetInfo
from .errors import DataError
from .sources import BUILTIN_DATASETS, fetch_ml1m, fetch_ml100k, load_dataset, recarena_home

__all__ = [
    "BUILTIN_DATASETS",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "fetch_ml100k",
    "fetch_ml1m",
    "load_dataset",
    "recarena_home",
]
