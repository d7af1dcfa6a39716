"""What a population round stored, kept in memory as it is stored: no read-back of the round from SQLite.

The round's figures and the recommender's update used to read the round's impressions
back from the event store. At a million users that read-back was most of a round's
memory (8.6 -> 18 GiB) and a good part of its time (docs/scaling.md, section 4). A
`RoundLog` takes each `SessionRecord` as it is committed and keeps the few columns the
figures and the update need, as arrays. `impressions()` and `sessions()` give frames
equal to ``EventStore.impressions(run, arm, [round])`` and ``EventStore.sessions(...)``
on those columns, rows in the store's order (user, page, position), so the figures are
the same numbers either way (tests/simulator/test_round_log.py compares them).

A log is only whole when the round ran in this process from its start: a run resumed in
the middle of a round has sessions of it in the store that the log never saw. The
population then reads that round back from the store, as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .events import SessionRecord


class RoundLog:
    """The stored sessions of one round, column by column (see the module docstring)."""

    def __init__(self, round_: int, whole: bool):
        self.round = round_
        self.whole = whole
        """True when every session of the round was added here (the round started in this process)."""
        # plain lists: a session's few values append faster than they make small arrays
        self._impressions: dict[str, list] = {name: [] for name in ("user", "page", "position", "item", "watched", "rating", "sim_time")}
        self._sessions: dict[str, list] = {name: [] for name in ("user", "pages", "satisfaction")}

    def add(self, record: SessionRecord) -> None:
        """Keep a committed session's columns (as `EventStore.record_session` wrote them)."""
        c = self._impressions
        for page, p in enumerate(record.pages):
            items = p.reaction.items
            n = len(items)
            c["user"].extend([record.user] * n)
            c["page"].extend([page] * n)
            c["position"].extend(range(n))
            c["item"].extend([r.item for r in items])
            c["watched"].extend([r.watched for r in items])
            c["rating"].extend([np.nan if r.rating is None else r.rating for r in items])
            c["sim_time"].extend(range(p.sim_time + page * 60, p.sim_time + page * 60 + n))
        interview = record.interview
        self._sessions["user"].append(record.user)
        self._sessions["pages"].append(len(record.pages))
        self._sessions["satisfaction"].append(np.nan if interview is None else float(interview.satisfaction))

    def impressions(self) -> pd.DataFrame:
        """Columns user, page, position, item, watched (bool), rating (NaN where not watched), sim_time;
        in (user, page, position) order, as the store returns them."""
        types = {"watched": bool, "rating": np.float64}
        frame = {name: np.asarray(values, types.get(name, np.int64)) for name, values in self._impressions.items()}
        order = np.lexsort((frame["position"], frame["page"], frame["user"]))
        return pd.DataFrame({name: values[order] for name, values in frame.items()})

    def sessions(self) -> pd.DataFrame:
        """Columns user, pages, satisfaction (NaN without an interview), in user order."""
        frame = pd.DataFrame({
            "user": np.asarray(self._sessions["user"], np.int64),
            "pages": np.asarray(self._sessions["pages"], np.int64),
            "satisfaction": np.asarray(self._sessions["satisfaction"], np.float64),
        })  # fmt: skip
        return frame.sort_values("user", kind="stable", ignore_index=True)
