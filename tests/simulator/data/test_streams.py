"""The named random streams: each one's entropy is its historical SeedSequence layout, and no two collide."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from recarena.simulator.data import streams
from recarena.simulator.data.streams import AB_SESSION, FIDELITY_PAGE, STREAMS, Stream

ROOT = Path(__file__).resolve().parents[3]


def sample_keys(stream: Stream) -> dict[str, int]:
    return {key: 3 + 10 * position for position, key in enumerate(stream.keys)}


# The SeedSequence lists the call sites wrote before the streams were named (seed 42, keys 1, 2, 3).
HISTORICAL = [
    ("ab.explore", {"arm": 1, "user": 7}, [42, 7_777, 1, 7]),
    ("ab.twin", {"user": 7}, [42, 2**20, 7]),
    ("fidelity.sample", {}, [42]),
    ("fidelity.page", {"part": 1, "user": 7}, [42, 1, 7]),
    ("fidelity.decision", {"user": 7}, [42, 2, 7]),
    ("fidelity.bootstrap", {}, [42, 3]),
    ("fidelity.rating", {}, [42, 4]),
    ("fidelity.shape", {}, [42, 5]),
    ("fidelity.user", {"user": 7}, [42, 6, 7]),
    ("fidelity.order", {}, [42, 7]),
    ("feedback.bootstrap", {"arm": 2}, [42, 5, 2]),
    ("augment.replicate", {"regime": 1, "replicate": 2, "salt": 3}, [42, 1, 2, 3]),
    ("augment.bootstrap", {}, [42, 99]),
    ("augment.shown_ratings", {}, [42]),
    ("prompt_bench.users", {"part": 2}, [42, 11, 2]),
    ("prompt_bench.case", {"user": 7, "part": 2}, [42, 7, 2]),
    ("prompt_bench.po4isr_users", {}, [42, 13]),
    ("prompt_bench.llm_ranker", {"user": 7}, [42, 7, 7]),
    ("prompt_bench.random_ranker", {"user": 7}, [42, 7, 3]),
    ("prompt_bench.tie_break", {"user": 7}, [42, 7, 5]),
    ("prompt_opt.users", {}, [42, 31_337]),
    ("prompt_opt.loop", {}, [42, 4_242]),
    ("prompt_opt.bootstrap", {}, [42, 9_001]),
]


@pytest.mark.parametrize(("name", "keys", "historical"), HISTORICAL, ids=[row[0] for row in HISTORICAL])
def test_a_draw_reads_as_its_historical_seed_sequence(name, keys, historical):
    rng = STREAMS[name].generator(42, **keys)
    assert rng.random(5).tolist() == np.random.default_rng(np.random.SeedSequence(historical)).random(5).tolist()


@pytest.mark.parametrize("stream", STREAMS.values(), ids=list(STREAMS))
def test_every_stream_entropy_is_its_layout(stream):
    keys = sample_keys(stream)
    expected = [11 if part == "seed" else keys[part] if isinstance(part, str) else part for part in stream.layout]
    assert stream.entropy(11, **keys) == expected
    assert stream.layout[0] == "seed"


@pytest.mark.parametrize("stream", STREAMS.values(), ids=list(STREAMS))
def test_every_stream_generator_equals_the_historical_default_rng(stream):
    keys = sample_keys(stream)
    historical = np.random.default_rng(np.random.SeedSequence(stream.entropy(5, **keys)))
    assert stream.generator(5, **keys).integers(0, 2**62, 4).tolist() == historical.integers(0, 2**62, 4).tolist()
    assert stream.sequence(5, **keys).entropy == np.random.SeedSequence(stream.entropy(5, **keys)).entropy


def test_a_stream_with_only_the_seed_equals_default_rng_of_the_bare_seed():
    # default_rng(seed) and default_rng(SeedSequence([seed])) are one stream: sites that seeded
    # with the bare run seed keep their draws when they move to a ("seed",) stream.
    only_seed = Stream("example.only_seed", ("seed",), "an example")
    assert only_seed.generator(9).random(3).tolist() == np.random.default_rng(9).random(3).tolist()


def test_a_missing_key_is_refused_naming_the_stream():
    with pytest.raises(TypeError, match=r"ab\.session.*arm"):
        AB_SESSION.generator(0, user=1)


def test_an_unknown_key_is_refused_naming_the_stream():
    with pytest.raises(TypeError, match=r"fidelity\.page.*round"):
        FIDELITY_PAGE.generator(0, part=0, user=1, round=2)


def test_names_are_unique_and_match_the_table():
    constants = [value for value in vars(streams).values() if isinstance(value, Stream)]
    assert len({s.name for s in constants}) == len(constants)
    assert sorted(STREAMS) == sorted(s.name for s in constants)


def test_no_two_streams_of_one_scenario_share_a_layout():
    # Layouts may repeat across scenarios (kept from history: a run only draws its own scenario's
    # streams), never within one.
    by_scenario: dict[str, dict[tuple, str]] = defaultdict(dict)
    for stream in STREAMS.values():
        scenario = stream.name.split(".")[0]
        assert stream.layout not in by_scenario[scenario], f"{stream.name} repeats {by_scenario[scenario].get(stream.layout)}"
        by_scenario[scenario][stream.layout] = stream.name


def test_the_architecture_document_lists_every_stream():
    text = (ROOT / "docs" / "architecture.md").read_text()
    constants = [name for name, value in vars(streams).items() if isinstance(value, Stream)]
    assert [name for name in constants if f"`{name}`" not in text] == []
