"""Every random stream of recarena, named in one place (Mesa 3's rule: RNG passed explicitly).

A run has one integer seed. Each kind of randomness draws from its own stream, whose
generator is seeded by a `numpy.random.SeedSequence` of the run's seed, the stream's fixed
salts and the keys of the draw (a user, an arm, a round)::

    rng = AB_SESSION.generator(seed, arm=1, user=42)

A stream's ``layout`` is its entropy, in order: ``"seed"``, then fixed integer salts and named
keys (given as keyword arguments). Keeping one stream per purpose is what makes runs
reproducible however work is batched, sharded or resumed: user 42's draws in arm 1 do not
depend on which users share its batch, nor on what other streams drew before.

The layouts are the historical ones, kept exactly so that stored runs stay reproducible
(some salts repeat across scenarios; a run only ever uses its own scenario's streams).
Add a stream here, never a ``SeedSequence([seed, 12345])`` at the call site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Layout = tuple[int | str, ...]


@dataclass(frozen=True)
class Stream:
    """A named random stream: `layout` is its entropy (``"seed"``, salts and key names) in order."""

    name: str
    layout: Layout
    purpose: str

    @property
    def keys(self) -> tuple[str, ...]:
        """The keyword arguments a draw from this stream needs."""
        return tuple(part for part in self.layout if isinstance(part, str) and part != "seed")

    def entropy(self, seed: int, **keys: int) -> list[int]:
        """The stream's entropy for run `seed` and `keys` (TypeError naming a missing or unknown key)."""
        if set(keys) != set(self.keys):
            raise TypeError(f"stream {self.name}: needs keys {self.keys}, got {tuple(sorted(keys))}")
        return [int(seed) if part == "seed" else int(keys[part]) if isinstance(part, str) else part for part in self.layout]

    def sequence(self, seed: int, **keys: int) -> np.random.SeedSequence:
        """The `SeedSequence` of this stream for run `seed` and `keys`."""
        return np.random.SeedSequence(self.entropy(seed, **keys))

    def generator(self, seed: int, **keys: int) -> np.random.Generator:
        """A fresh generator on this stream for run `seed` and `keys`."""
        return np.random.default_rng(self.sequence(seed, **keys))


# ------------------------------------------------------------------ simulated A/B tests
AB_USERS = Stream("ab.users", ("seed", 1), "which users an A/B test draws, and their arms in a split design")
AB_STATISTICS = Stream("ab.statistics", ("seed", 3), "the bootstrap intervals and permutation tests of the A/B comparisons")
AB_TWIN = Stream("ab.twin", ("seed", 2**20, "user"), "building each user once: the snapshot every arm starts from")
AB_SESSION = Stream("ab.session", ("seed", "arm", "user"), "a user's draws in one arm (twins share their state, not their luck)")
AB_EXPLORE = Stream("ab.explore", ("seed", 7_777, "arm", "user"), "the control's exploring slates (off-policy logging)")
AA_ARM = Stream("aa.arm", ("seed", "arm"), "the A/A self-check's vectorised sessions of one arm")

# ------------------------------------------------------------------ the agreement self-check (scenarios/agreement)
AGREEMENT_USERS = Stream("agreement.users", ("seed", 1_818), "which evaluated users the agreement check simulates")
AGREEMENT_STATISTICS = Stream("agreement.statistics", ("seed", 1_819), "the agreement figures' bootstrap intervals")

# ------------------------------------------------------------------ populations (Mesa rounds)
POPULATION_USERS = Stream("population.users", ("seed", 2**31 - 1), "which users a population holds")
POPULATION_USER = Stream("population.user", ("seed", "user"), "building a population's user")
POPULATION_ACTIVE = Stream("population.active", ("seed", "round"), "who is active in a round")
POPULATION_SESSION = Stream("population.session", ("seed", "round", "user"), "a user's draws in one round's session")
POPULATION_SLOTS = Stream("population.slots", ("seed", "round", "user", 1), "a session's epsilon-greedy slots")

# ------------------------------------------------------------------ fidelity (agents/fidelity*.py, scenarios/fidelity)
FIDELITY_SAMPLE = Stream("fidelity.sample", ("seed",), "which held-out users the fidelity checks sample")
FIDELITY_PAGE = Stream("fidelity.page", ("seed", "part", "user"), "a user's taste page of one part (validation or test)")
FIDELITY_DECISION = Stream("fidelity.decision", ("seed", 2, "user"), "a simulated user's decisions on its taste pages")
FIDELITY_BOOTSTRAP = Stream("fidelity.bootstrap", ("seed", 3), "bootstrap intervals of the taste figures")
FIDELITY_RATING = Stream("fidelity.rating", ("seed", 4), "bootstrap intervals of rating alignment")
FIDELITY_SHAPE = Stream("fidelity.shape", ("seed", 5), "bootstrap intervals of the behaviour shape")
FIDELITY_USER = Stream("fidelity.user", ("seed", 6, "user"), "building a checked user")
FIDELITY_ORDER = Stream("fidelity.order", ("seed", 7), "the order of the checked users (the LLM kinds take the first ones)")

# ------------------------------------------------------------------ feedback loop, augmentation
FEEDBACK_BOOTSTRAP = Stream("feedback.bootstrap", ("seed", 5, "arm"), "bootstrap intervals of an arm's first-to-last changes")
AUGMENT_REPLICATE = Stream("augment.replicate", ("seed", "regime", "replicate", "salt"),
                           "one replicate of one data regime; salt 1 the sparse cut, 2 the seed of the page source "
                           "and sessions, 3 the users, 4 the popularity and random baselines")
AUGMENT_BOOTSTRAP = Stream("augment.bootstrap", ("seed", 99), "bootstrap intervals of the augmentation gains")
AUGMENT_SHOWN_RATINGS = Stream("augment.shown_ratings", ("seed",), "ratings drawn for the shown-items control (seed: the replicate's)")

# ------------------------------------------------------------------ prompt benchmarks and optimisation
PROMPT_BENCH_USERS = Stream("prompt_bench.users", ("seed", 11, "part"), "the users of a RecPrompt-style benchmark part")
PROMPT_BENCH_CASE = Stream("prompt_bench.case", ("seed", "user", "part"), "a case's negatives and candidate order")
PO4ISR_USERS = Stream("prompt_bench.po4isr_users", ("seed", 13), "PO4ISR's disjoint train, valid and test users")
LLM_RANKER = Stream("prompt_bench.llm_ranker", ("seed", "user", 7), "an LLM ranker's candidate order for one case")
RANDOM_RANKER = Stream("prompt_bench.random_ranker", ("seed", "user", 3), "the random ranker's order for one case")
TIE_BREAK = Stream("prompt_bench.tie_break", ("seed", "user", 5), "breaking a model ranker's ties for one case")
PROMPT_OPT_USERS = Stream("prompt_opt.users", ("seed", 31_337), "the prompt optimiser's train, valid and test users")
PROMPT_OPT_LOOP = Stream("prompt_opt.loop", ("seed", 4_242), "an optimiser's own choices (batches, candidates)")
PROMPT_OPT_BOOTSTRAP = Stream("prompt_opt.bootstrap", ("seed", 9_001), "bootstrap intervals of the method comparison")

# ------------------------------------------------------------------ users' dynamics (agents/dynamics.py)
USER_DYNAMICS = Stream("users.dynamics", ("seed", 18), "the negatives and folds of fitting the users' dynamics on validation")
USER_DYNAMICS_CARRY = Stream("users.dynamics_carry", ("seed", 19), "the random items that match carried-over dynamics' intercept")

# ------------------------------------------------------------------ tuning the users' LLM (agents/tuning, scenarios/tune_llm)
TUNE_USERS = Stream("tune.users", ("seed", 19_019), "which training users the LoRA examples are built for")
TUNE_EXAMPLES = Stream("tune.examples", ("seed", 19_020, "user"), "a user's negatives, pages and positions, and the order of its examples")
TUNE_ORDER = Stream("tune.order", ("seed", 19_021, "epoch"), "the order of the packed sequences in one epoch of LoRA training")

# ------------------------------------------------------------------ RL agents against simulated users (examples/train_rl_agent.py)
RL_USERS = Stream("rl.users", ("seed", 22_301), "which users an RL agent trains on and which (disjoint) it is evaluated on")
RL_EVALUATION = Stream("rl.evaluation", ("seed", 22_302, "repeat"),
                       "one evaluation pass: every policy meets the same held-out users with the same luck")
RL_CURVE = Stream("rl.curve", ("seed", 22_303), "the learning curve's checks of the greedy agent on training users")
RL_BOOTSTRAP = Stream("rl.bootstrap", ("seed", 22_304), "bootstrap intervals of the RL comparison")

STREAMS: dict[str, Stream] = {s.name: s for s in globals().values() if isinstance(s, Stream)}
"""Every stream by name (tests check that no two streams of one scenario share a layout)."""
