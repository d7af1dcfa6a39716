"""The event store: every impression and reaction of a run, in SQLite (WAL mode), committed per session.

Tables (one file, ``events.sqlite`` in a run directory):

* ``impressions``: one row per shown item: run, arm, round, user, session, page, position,
  item, watched (0/1), rating (NULL unless watched), text (the user's reason, NULL without
  text), feeling (after the page), shown_at / reacted_at (wall clock, seconds since the
  epoch), sim_time (the simulated timestamp the recommender sees), fallbacks (LLM answers
  that fell back on this page) and llm_calls (a JSON list of the page's LLM call ids: the
  LLM cache keys, so each decision can be traced to the answer that made it; NULL for
  users that make no LLM calls).
* ``sessions``: one row per finished session, with its interview and the user's snapshot
  (``get_state``, as tagged JSON: `recarena.simulator.snapshots`) taken after the session: what a resumed
  run restores. Nothing stored is unpickled, so opening a planted run directory runs none of its contents.
* ``rounds``: one row per finished round of a population, with its figures (JSON).

A session's impressions and its ``sessions`` row are written in one transaction, so a run
killed at any moment (kill -9 included) leaves whole sessions only. The primary keys make
a duplicated session an error rather than a silent double count. Process crashes lose
nothing committed (WAL, ``synchronous=NORMAL``); an OS crash may lose the last commits.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from recarena.agents.contract import Interview, PageReaction

from .snapshots import decode_snapshot, encode_snapshot

_SCHEMA = """
CREATE TABLE IF NOT EXISTS impressions (
    run TEXT NOT NULL, arm TEXT NOT NULL, round INTEGER NOT NULL, user INTEGER NOT NULL, session INTEGER NOT NULL,
    page INTEGER NOT NULL, position INTEGER NOT NULL, item INTEGER NOT NULL, watched INTEGER NOT NULL,
    rating INTEGER, text TEXT, feeling TEXT, shown_at REAL, reacted_at REAL, sim_time INTEGER,
    fallbacks INTEGER, llm_calls TEXT,
    PRIMARY KEY (run, arm, round, user, page, position)
);
CREATE TABLE IF NOT EXISTS sessions (
    run TEXT NOT NULL, arm TEXT NOT NULL, round INTEGER NOT NULL, user INTEGER NOT NULL, session INTEGER NOT NULL,
    pages INTEGER NOT NULL, shown INTEGER NOT NULL, watched INTEGER NOT NULL, left_site INTEGER NOT NULL,
    satisfaction INTEGER, liked TEXT, missed TEXT, started_at REAL, ended_at REAL, user_state BLOB,
    PRIMARY KEY (run, arm, round, user)
);
CREATE TABLE IF NOT EXISTS rounds (
    run TEXT NOT NULL, arm TEXT NOT NULL, round INTEGER NOT NULL, figures TEXT NOT NULL, completed_at REAL,
    PRIMARY KEY (run, arm, round)
);
"""

IMPRESSION_COLUMNS = (
    "run", "arm", "round", "user", "session", "page", "position", "item", "watched", "rating", "text", "feeling",
    "shown_at", "reacted_at", "sim_time", "fallbacks", "llm_calls",
)  # fmt: skip
SESSION_COLUMNS = ("run", "arm", "round", "user", "session", "pages", "shown", "watched", "left_site", "satisfaction", "liked", "missed", "started_at", "ended_at")
#: Columns that differ between two runs of the same seed (wall-clock times); compare the rest.
WALL_CLOCK_COLUMNS = ("shown_at", "reacted_at", "started_at", "ended_at", "completed_at")


def without_wall_clock(frame: pd.DataFrame, *also: str) -> pd.DataFrame:
    """`frame` (impressions or sessions) without its wall-clock columns (and the columns named in `also`): what two
    runs of the same settings must store alike."""
    return frame.drop(columns=[c for c in (*WALL_CLOCK_COLUMNS, *also) if c in frame.columns])


@dataclass
class PageRecord:
    """One page of a session as the store keeps it."""

    reaction: PageReaction
    shown_at: float
    reacted_at: float
    sim_time: int


@dataclass
class SessionRecord:
    """One finished session: where it belongs, its pages, its interview and the user's snapshot after it."""

    run: str
    arm: str
    round: int
    user: int
    session: int
    pages: list[PageRecord] = field(default_factory=list)
    left: bool = False
    interview: Interview | None = None
    user_state: dict[str, Any] | None = None


class EventStore:
    """An append-only log of sessions in SQLite (see the module docstring). ``":memory:"`` keeps it in RAM."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise sqlite3.DatabaseError(f"{self.path}: not a usable event store ({exc})") from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def record_session(self, record: SessionRecord) -> None:
        """Write a whole session (impressions + session row) in one transaction."""
        rows = []
        for page, p in enumerate(record.pages):
            for position, r in enumerate(p.reaction.items):
                rows.append((
                    record.run, record.arm, record.round, record.user, record.session, page, position, r.item,
                    int(r.watched), r.rating, r.reason, p.reaction.feeling, p.shown_at, p.reacted_at,
                    p.sim_time + page * 60 + position, p.reaction.fallbacks,
                    json.dumps(list(p.reaction.llm_calls)) if p.reaction.llm_calls else None,
                ))  # fmt: skip
        interview = record.interview
        shown = sum(len(p.reaction.items) for p in record.pages)
        watched = sum(p.reaction.n_watched for p in record.pages)
        started = record.pages[0].shown_at if record.pages else None
        ended = record.pages[-1].reacted_at if record.pages else None
        state = encode_snapshot(record.user_state) if record.user_state is not None else None
        session_row = (
            record.run, record.arm, record.round, record.user, record.session, len(record.pages), shown, watched, int(record.left),
            interview.satisfaction if interview else None, interview.liked if interview else None,
            interview.missed if interview else None, started, ended, state,
        )  # fmt: skip
        c = self.connection
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(f"INSERT INTO impressions VALUES ({','.join('?' * len(IMPRESSION_COLUMNS))})", rows)
            c.execute(f"INSERT INTO sessions VALUES ({','.join('?' * 15)})", session_row)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def record_round(self, run: str, arm: str, round: int, figures: dict[str, float], completed_at: float) -> None:
        with self.connection:
            self.connection.execute("INSERT INTO rounds VALUES (?, ?, ?, ?, ?)", (run, arm, round, json.dumps(figures), completed_at))

    # ------------------------------------------------------------------ reading
    def completed_sessions(self, run: str, arm: str) -> set[tuple[int, int]]:
        """(round, user) of every session already stored."""
        rows = self.connection.execute("SELECT round, user FROM sessions WHERE run=? AND arm=?", (run, arm))
        return {(r, u) for r, u in rows}

    def completed_rounds(self, run: str, arm: str) -> dict[int, dict[str, float]]:
        rows = self.connection.execute("SELECT round, figures FROM rounds WHERE run=? AND arm=? ORDER BY round", (run, arm))
        return {r: json.loads(f) for r, f in rows}

    def latest_user_states(self, run: str, arm: str) -> dict[int, tuple[int, dict[str, Any]]]:
        """Per user: (sessions so far, the snapshot after the last one)."""
        query = """SELECT s.user, s.user_state, c.n FROM sessions s
                   JOIN (SELECT user, MAX(round) AS last, COUNT(*) AS n FROM sessions WHERE run=? AND arm=? GROUP BY user) c
                   ON s.user = c.user AND s.round = c.last WHERE s.run=? AND s.arm=?"""
        out = {}
        for user, blob, n in self.connection.execute(query, (run, arm, run, arm)):
            out[int(user)] = (int(n), decode_snapshot(blob) if blob is not None else None)
        return out

    def impressions(self, run: str | None = None, arm: str | None = None, rounds: Sequence[int] | None = None) -> pd.DataFrame:
        """Impressions as a DataFrame, in (run, arm, round, user, page, position) order."""
        where, args = _filters(run, arm, rounds)
        query = f"SELECT * FROM impressions{where} ORDER BY run, arm, round, user, page, position"
        frame = pd.read_sql_query(query, self.connection, params=args)
        return frame.astype({"watched": bool}) if len(frame) else frame

    def sessions(self, run: str | None = None, arm: str | None = None, rounds: Sequence[int] | None = None) -> pd.DataFrame:
        """Sessions (without the users' snapshots) as a DataFrame."""
        where, args = _filters(run, arm, rounds)
        query = f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions{where} ORDER BY run, arm, round, user"
        return pd.read_sql_query(query, self.connection, params=args)

    def to_parquet(self, directory: str | Path) -> dict[str, Path]:
        """Write impressions.parquet and sessions.parquet into `directory`; returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"impressions": directory / "impressions.parquet", "sessions": directory / "sessions.parquet"}
        self.impressions().to_parquet(paths["impressions"], index=False)
        self.sessions().to_parquet(paths["sessions"], index=False)
        return paths


def _filters(run: str | None, arm: str | None, rounds: Sequence[int] | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if run is not None:
        clauses.append("run = ?")
        args.append(run)
    if arm is not None:
        clauses.append("arm = ?")
        args.append(arm)
    if rounds is not None:
        rounds = [int(r) for r in rounds]
        clauses.append(f"round IN ({','.join('?' * len(rounds))})")
        args.extend(rounds)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args
