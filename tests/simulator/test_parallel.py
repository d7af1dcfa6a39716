"""Executors: contiguous shards, results keyed by shard, and a clear message when Ray is missing."""

from __future__ import annotations

import builtins

import pytest

from recarena.simulator.parallel import LocalExecutor, make_executor, split_evenly


def test_split_evenly_keeps_order_and_sizes_differ_by_at_most_one():
    parts = split_evenly(list(range(10)), 3)
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split_evenly([1, 2], 5) == [[1], [2]]
    assert split_evenly([], 4) == []
    with pytest.raises(ValueError, match="shards"):
        split_evenly([1], 0)


def test_local_executor_runs_every_shard_with_the_shared_object():
    executor = LocalExecutor()
    results = dict(executor.imap_unordered(lambda shared, shard: [shared * x for x in shard], executor.share(10), [[1, 2], [3]]))
    assert results == {0: [10, 20], 1: [30]}


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="local, ray"):
        make_executor("dask")


def test_missing_ray_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r"pip install 'recarena\[ray\]'"):
        make_executor("ray", workers=1)
