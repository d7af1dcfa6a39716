"""The registry builds models by name from Python, YAML blocks and CLI flags, and refuses bad input in one line."""

from __future__ import annotations

import pytest
import yaml

from recarena.recommenders import (
    BPR, REGISTRY, ParamsError, RecommenderError, SASRec, build_recommender, build_recommender_from_config,
    parse_assignments, recommender_names,
)  # fmt: skip


def test_registry_names_the_issue_models():
    assert recommender_names() == ["random", "pop", "itemknn", "bpr", "lightgcn", "sasrec", "hstu", "tiger", "llm-rerank"]
    assert all(cls.name == name for name, cls in REGISTRY.items())


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(RecommenderError) as error:
        build_recommender("bprr")
    message = str(error.value)
    assert "\n" not in message and "'bprr'" in message
    assert all(name in message for name in recommender_names())


def test_planned_model_says_it_is_not_implemented_yet(monkeypatch):
    from recarena.recommenders import registry

    monkeypatch.setattr(registry, "PLANNED", ("future-model",))
    with pytest.raises(RecommenderError, match="planned but not implemented"):
        build_recommender("future-model")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ParamsError) as error:
        build_recommender("bpr", {"dimm": 8})
    message = str(error.value)
    assert "\n" not in message and "'dimm'" in message and "dim" in message and "lr" in message


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("bpr", {"dim": 0}, "'dim'"),
        ("bpr", {"lr": -1.0}, "'lr'"),
        ("bpr", {"index": "annoy"}, "'index'"),
        ("sasrec", {"dropout": 1.5}, "'dropout'"),
        ("sasrec", {"dim": 64, "heads": 3}, "divisible by heads"),
        ("itemknn", {"neighbours": "many"}, "'neighbours'"),
        ("lightgcn", {"layers": -1}, "'layers'"),
    ],
)
def test_bad_values_give_one_line_errors(name, params, expected):
    with pytest.raises(ParamsError) as error:
        build_recommender(name, params)
    assert expected in str(error.value) and "\n" not in str(error.value) and str(error.value).startswith(name)


def test_direct_construction_validates_too():
    with pytest.raises(ParamsError, match="'epochs'"):
        BPR(epochs=0)


def test_cli_assignments_are_converted_to_typed_values():
    model = build_recommender("sasrec", parse_assignments(["dim=32", "heads=4", "dropout=0.1", "progress=false", "loss=sampled_softmax"]))
    assert isinstance(model, SASRec)
    assert model.params.dim == 32 and model.params.dropout == 0.1 and model.params.progress is False
    assert model.params.loss == "sampled_softmax"
    with pytest.raises(RecommenderError, match="name=value"):
        parse_assignments(["dim"])


def test_yaml_block_builds_a_model():
    block = yaml.safe_load("name: lightgcn\nlayers: 3\nlr: 0.002\n")
    model = build_recommender_from_config(block)
    assert model.name == "lightgcn" and model.params.layers == 3 and model.params.lr == 0.002
    with pytest.raises(RecommenderError, match="'name'"):
        build_recommender_from_config({"layers": 3})


def test_every_parameter_has_a_description():
    for cls in REGISTRY.values():
        for field_name, field in cls.Params.model_fields.items():
            assert field.description, f"{cls.name}.{field_name} has no description"
        assert cls.Params.describe().count("\n") == len(cls.Params.model_fields) - 1


def test_every_model_accepts_progress_so_callers_never_ask_first():
    for name, cls in REGISTRY.items():
        assert "progress" in cls.Params.model_fields, name
        assert build_recommender(name, {"progress": False}).params.progress is False
