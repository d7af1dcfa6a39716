"""Run a small population into a run directory (the kill-and-resume test starts this as a subprocess).

    python resume_worker.py RUN_DIR SLOW_SECONDS

SLOW_SECONDS pauses after each committed session, so that the test can kill the run mid-way.
"""

from __future__ import annotations

import sys
import time

from recarena.agents.kit import build_user_kit
from recarena.agents.preferences import PreferenceConfig
from recarena.recommenders import build_recommender
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic
from recarena.simulator.events import EventStore
from recarena.simulator.population import Population, PopulationConfig

WORLD = dict(n_users=80, n_items=60, mean_interactions=15, seed=11)
CONFIG = PopulationConfig(rounds=4, slate_size=4, max_pages=4, batch_size=9, update_every=2, progress=False)


def main(run_dir: str, slow: float) -> None:
    data = generate_synthetic(SyntheticConfig(**WORLD))
    kit = build_user_kit(data, seed=0, preference_config=PreferenceConfig(epochs=40, seed=0))
    if slow:
        record = EventStore.record_session

        def slowly(self, session):
            record(self, session)
            time.sleep(slow)

        EventStore.record_session = slowly
    population = Population(kit, build_recommender("pop").fit(data), CONFIG, seed=42, run_dir=run_dir)
    print("starting at round", population.round, flush=True)
    population.run()
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
