"""Run a `recarena` command, logging every session it stores (the kill-and-resume tests start this).

    python kill_worker.py LOG SLOW_SECONDS -- SUBCOMMAND ARGS...

Every session any scenario keeps goes through `EventStore.record_session` (the A/B test's and the agreement
check's session engine, the feedback loop's population). Each one appends ``run arm round user`` to LOG, then
SLOW_SECONDS pass, so that the test can kill the run mid-way. A session simulated and stored twice is logged twice.
"""

from __future__ import annotations

import sys
import time

from recarena.scenarios.cli import main
from recarena.simulator.events import EventStore


def logging_record(record_session, log: str, slow: float = 0.0):
    """`record_session` (the event store's) that also logs each stored session to `log`, then pauses `slow` seconds."""

    def recorded(store, session):
        record_session(store, session)
        with open(log, "a") as f:
            f.write(f"{session.run} {session.arm} {session.round} {session.user}\n")
        time.sleep(slow)

    return recorded


if __name__ == "__main__":
    log, slow, sep, *args = sys.argv[1:]
    assert sep == "--", sys.argv
    EventStore.record_session = logging_record(EventStore.record_session, log, float(slow))
    sys.exit(main(args))
