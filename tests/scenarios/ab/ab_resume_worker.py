"""Run a `recarena` command, logging every session it simulates (the kill-and-resume tests start this).

    python ab_resume_worker.py LOG SLOW_SECONDS -- SUBCOMMAND ARGS...

Each session the engine finishes and stores appends ``arm round user`` to LOG; SLOW_SECONDS pauses after each
one, so that the test can kill the run mid-way. A session simulated twice would be logged twice.
"""

from __future__ import annotations

import sys
import time

import recarena.simulator.session_engine as engine
from recarena.scenarios.cli import main


def logging_finish(finish, log: str, slow: float = 0.0):
    """`finish` (the engine's ``_finish``) that also logs each stored session to `log` and then pauses `slow` seconds."""

    def finished(plan, seat, pages, left, store, keep_state):
        record = finish(plan, seat, pages, left, store, keep_state)
        if store is not None:
            with open(log, "a") as f:
                f.write(f"{plan.arm} {plan.round} {seat.user_id}\n")
            time.sleep(slow)
        return record

    return finished


if __name__ == "__main__":
    log, slow, sep, *args = sys.argv[1:]
    assert sep == "--", sys.argv
    engine._finish = logging_finish(engine._finish, log, float(slow))
    sys.exit(main(args))
