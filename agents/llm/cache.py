"""A persistent answer cache in SQLite (WAL mode).

Keys are SHA-256 digests of a canonical JSON of everything that changes an answer: backend
identity, model, messages, schema, options and sampling parameters including the seed. Values are
JSON of what the backend returned (text or log-probabilities plus token counts), never a key or a
header. Only answers that passed validation are stored, so a fallback is retried on the next run.

Several threads and processes may write at once: each thread has its own connection, WAL lets
readers and one writer proceed together, and ``busy_timeout`` makes concurrent writers wait
instead of failing. A file that is not a readable SQLite database (or fails ``quick_check``) is
moved aside to ``<name>.corrupt-<n>`` and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger("recarena.agents.llm")

_SCHEMA_VERSION = "1"


class CacheCorruptWarning(UserWarning):
    """The cache file was unreadable and has been rebuilt empty."""


def cache_key(payload: dict[str, Any]) -> str:
    """Stable digest of a JSON-able payload (dict order and float formatting do not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encode(value: Any) -> str:
    # -inf log-probabilities are legal answers; JSON has no infinity, so store them as null.
    def fix(obj: Any) -> Any:
        if isinstance(obj, float) and math.isinf(obj):
            return None
        if isinstance(obj, dict):
            return {k: fix(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fix(v) for v in obj]
        return obj

    return json.dumps(fix(value), sort_keys=True)


class SQLiteCache:
    """Thread- and process-safe key/value cache with hit and miss counts."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._open_checked()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _initialise(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            "value TEXT NOT NULL, created REAL NOT NULL DEFAULT (julianday('now')))"
        )
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (_SCHEMA_VERSION,))
        version = conn.execute("SELECT value FROM meta WHERE name='version'").fetchone()[0]
        if version != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"cache format version {version!r}, expected {_SCHEMA_VERSION!r}")

    def _open_checked(self) -> None:
        try:
            conn = self._connect()
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {status}")
            self._initialise(conn)
            conn.close()
        except sqlite3.DatabaseError as exc:
            self._rebuild(str(exc))

    def _rebuild(self, reason: str) -> None:
        n = 1
        while self.path.with_name(f"{self.path.name}.corrupt-{n}").exists():
            n += 1
        aside = self.path.with_name(f"{self.path.name}.corrupt-{n}")
        message = f"LLM cache {self.path} is corrupt ({reason}); moved to {aside.name} and rebuilt empty"
        warnings.warn(message, CacheCorruptWarning, stacklevel=3)
        log.warning(message)
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                side.unlink()
        conn = self._connect()
        self._initialise(conn)
        conn.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Any | None:
        """The stored value (None-encoded infinities restored by the caller) or None; counts hit/miss."""
        try:
            row = self._conn.execute("SELECT value FROM answers WHERE key=?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:  # damaged while open: answer from the model instead
            log.warning("LLM cache %s unreadable (%s); treating as a miss", self.path, exc)
            row = None
        with self._count_lock:
            if row is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if row is None else json.loads(row[0])

    def put(self, key: str, kind: str, value: Any) -> None:
        """Store a validated answer; the last writer of the same key wins (answers are equal)."""
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO answers (key, kind, value) VALUES (?, ?, ?)", (key, kind, _encode(value))
            )
        except sqlite3.DatabaseError as exc:  # a lost write costs one model call on the next run
            log.warning("LLM cache %s not writable (%s); answer not cached", self.path, exc)

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def stats(self) -> dict[str, int]:
        """Hit and miss counts of this process since opening, and the number of entries."""
        return {"hits": self.hits, "misses": self.misses, "entries": len(self)}

    def close(self) -> None:
        """Close this thread's connection (other threads' close with their thread)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
