"""The SQLite answer cache: concurrent writers, hit/miss counts, corruption detected and rebuilt."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest

from recarena.agents.llm import CacheCorruptWarning, SQLiteCache
from recarena.agents.llm.cache import cache_key


def _writer(path: str, worker: int, count: int) -> None:
    cache = SQLiteCache(path)
    for i in range(count):
        cache.put(cache_key({"worker": worker, "i": i}), "chat", {"text": f"{worker}-{i}"})


def test_concurrent_writers_from_processes_and_threads(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    SQLiteCache(path)
    code = (
        "import sys\nfrom recarena.agents.llm.cache import SQLiteCache, cache_key\n"
        "cache = SQLiteCache(sys.argv[1]); w = int(sys.argv[2])\n"
        "for i in range(40): cache.put(cache_key({'worker': w, 'i': i}), 'chat', {'text': f'{w}-{i}'})\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", code, path, str(w)]) for w in range(3)]
    threads = [threading.Thread(target=_writer, args=(path, 10 + w, 40)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [p.wait(timeout=120) for p in processes] == [0, 0, 0]
    cache = SQLiteCache(path)
    assert len(cache) == 6 * 40
    assert cache.get(cache_key({"worker": 11, "i": 39})) == {"text": "11-39"}
    assert cache.get(cache_key({"worker": 99, "i": 0})) is None
    assert cache.stats() == {"hits": 1, "misses": 1, "entries": 240}
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_key_ignores_dict_order_but_not_values():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1, "seed": 0}) != cache_key({"a": 1, "seed": 1})


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_detected_and_rebuilt_with_a_warning(tmp_path, damage):
    path = tmp_path / "cache.sqlite"
    cache = SQLiteCache(path)
    for i in range(200):
        cache.put(cache_key({"i": i}), "chat", {"text": "x" * 500})
    cache.close()
    data = path.read_bytes() if path.stat().st_size else b""
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    else:  # keep the header, smash the pages
        path.write_bytes(data[:100] + b"\x00\xff" * 4000)
    for side in ("-wal", "-shm"):
        (tmp_path / f"cache.sqlite{side}").unlink(missing_ok=True)
    with pytest.warns(CacheCorruptWarning, match="corrupt"):
        rebuilt = SQLiteCache(path)
    assert len(rebuilt) == 0
    assert (tmp_path / "cache.sqlite.corrupt-1").exists()
    rebuilt.put("k", "chat", {"text": "fresh"})
    assert rebuilt.get("k") == {"text": "fresh"}
