"""Config strings, the registry's one-line errors, schema extraction/validation and option mapping."""

from __future__ import annotations

import math

import pytest

from recarena.agents.llm import AnswerInvalid, LLMConfig, Schema, backend_from_string, make_llm
from recarena.agents.llm.scoring import normalise, options_from_top_tokens


def test_openai_string_parses_model_url_and_env_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    backend = backend_from_string("openai:gpt-4o-mini@http://127.0.0.1:9/v1/")
    assert backend.identity() == {"backend": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1"}
    assert backend.secrets() == ["sk-from-env-123456"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:10/v1")
    assert backend_from_string("openai:m").identity()["base_url"] == "http://127.0.0.1:10/v1"
    config = LLMConfig(api_key="sk-config-654321")
    assert backend_from_string("openai:m@http://x/v1", config).secrets() == ["sk-config-654321"]
    assert "sk-config" not in repr(config)


@pytest.mark.parametrize("spec, message", [
    ("gpt4", "unknown LLM backend 'gpt4'"),
    ("openai:@http://x", "model name is missing"),
    ("embedded:big", "takes only .embedded:tuned. .the shipped adapter. or .embedded:adapter=FOLDER."),
])
def test_bad_config_strings_fail_with_one_line(spec, message):
    with pytest.raises(ValueError, match=message):
        backend_from_string(spec)


def test_make_llm_rejects_unknown_objects():
    with pytest.raises(TypeError, match="BaseChatModel"):
        make_llm(object())


def test_schema_extraction_and_validation_messages():
    schema = Schema.of({"type": "object", "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5},
                                                          "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
                        "required": ["stars"], "additionalProperties": False})
    assert schema.validate_text('Here: {"stars": 3, "tags": ["a"]} hope it helps') == {"stars": 3, "tags": ["a"]}
    for text, reason in [('{"stars": 7}', "maximum"), ('{"tags": []}', "stars: missing"),
                         ('{"stars": 2, "x": 1}', "not allowed"), ('{"stars": true}', "expected integer"),
                         ('{"stars": 2, "tags": ["c"]}', "not one of"), ("no json at all", "not valid JSON")]:
        with pytest.raises(AnswerInvalid, match=reason):
            schema.validate_text(text)
    with pytest.raises(TypeError, match="pydantic model class or a JSON-schema dict"):
        Schema.of("stars")


def test_top_tokens_map_onto_options():
    top = [("Yes", math.log(0.5)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("Maybe", math.log(0.1))]
    logprobs = options_from_top_tokens(top, ["Yes", "No"])
    assert math.exp(logprobs["Yes"]) == pytest.approx(0.6)
    assert normalise(logprobs) == pytest.approx({"Yes": 0.75, "No": 0.25})
    assert options_from_top_tokens([("Y", -0.1)], ["Yes", "No"])["No"] == -math.inf
    with pytest.raises(ValueError, match="none of the top"):
        options_from_top_tokens([("Maybe", -0.1)], ["Yes", "No"])


def test_build_llm_answers_through_the_cache_without_a_bar_of_its_own(tmp_path):
    from recarena.agents.llm import build_llm
    from recarena.agents.llm.scripted import ScriptedBackend

    backend = ScriptedBackend(default="Heat")
    llm = build_llm(backend, tmp_path / "cache.sqlite", timeout_s=5)
    assert llm.progress is False and llm.timeout_s == 5
    messages = [{"role": "user", "content": "A film?"}]
    assert llm.chat(messages).text == build_llm(backend, tmp_path / "cache.sqlite").chat(messages).text == "Heat"
    assert len(backend.requests) == 1  # the second LLM answered from the first one's cache
    assert build_llm(backend, None).cache is None
    with pytest.raises(ValueError, match="timeout_secs"):
        build_llm(backend, None, timeout_secs=5)
