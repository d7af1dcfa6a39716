"""Run `recarena tune-llm`, logging each checkpoint it writes and pausing after it (the kill-and-resume test starts this).

    python kill_worker.py LOG SLOW_SECONDS -- ARGS...
"""

from __future__ import annotations

import sys
import time

from recarena.agents.tuning import trainer
from recarena.scenarios.cli import main


def logging_save(save, log: str, slow: float):
    def saved(folder, step, *rest):
        path = save(folder, step, *rest)
        with open(log, "a") as f:
            f.write(f"{step}\n")
        time.sleep(slow)
        return path

    return saved


if __name__ == "__main__":
    log, slow, sep, *args = sys.argv[1:]
    assert sep == "--", sys.argv
    trainer.save_checkpoint = logging_save(trainer.save_checkpoint, log, float(slow))
    sys.exit(main(args))
