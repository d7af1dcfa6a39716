"""The endpoint backends against a real llama.cpp server on 127.0.0.1: the openai client and
LangChain's ChatOpenAI; and the secrets test that greps cache, logs and reports for the key."""

from __future__ import annotations

import json
import logging

import pytest

from recarena.agents.llm import LLM, LLMConfig, check_llm, make_llm
from recarena.agents.llm.langchain_backend import LangChainBackend


def endpoint_llm(server, api_key, **config) -> LLM:
    config = LLMConfig(api_key=api_key, progress=False, **config)
    return make_llm(f"openai:smollm2@{server.base_url}", config)


def chat_openai(server, api_key):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="smollm2", base_url=server.base_url, api_key=api_key, temperature=0, seed=0,
                      max_tokens=48, max_retries=0, timeout=60)


def test_openai_backend_against_llama_server(llama_server, api_key, question, verdict_schema):
    llm = endpoint_llm(llama_server, api_key)
    summary = check_llm(llm)
    assert summary["structured_ok"] and summary["method"] == "logprobs"
    verdict = llm.chat(question, verdict_schema, params={"max_tokens": 40})
    assert verdict.ok and isinstance(verdict.parsed, verdict_schema)
    # llama.cpp's server refuses response_format=json_schema; the backend found its schema extension.
    assert llm.backend.structured_mode == "json_object_schema"
    assert llm.accountant.total().prompt_tokens > 0 and llm.accountant.total().failures == 0


def test_endpoint_score_matches_the_embedded_model(llama_server, api_key, embedded_backend, question):
    remote = endpoint_llm(llama_server, api_key).score(question, ["Yes", "No"])
    local = LLM(embedded_backend, progress=False).score(question, ["Yes", "No"])
    assert remote.method == local.method == "logprobs"
    assert remote.best == local.best
    assert remote.probabilities["Yes"] == pytest.approx(local.probabilities["Yes"], abs=0.05)


def test_langchain_chatopenai_against_llama_server(llama_server, api_key, question, verdict_schema):
    llm = make_llm(chat_openai(llama_server, api_key), LLMConfig(progress=False))
    assert isinstance(llm.backend, LangChainBackend)
    summary = check_llm(llm)
    assert summary["structured_ok"] and summary["method"] == "logprobs"
    verdict = llm.chat(question, verdict_schema)
    assert verdict.ok and isinstance(verdict.parsed, verdict_schema)
    assert llm.backend.structured_method in ("default", "json_object_schema", "json_mode", "prompt")
    assert llm.accountant.total().completion_tokens > 0


def test_api_key_never_reaches_cache_logs_or_reports(llama_server, api_key, tmp_path, caplog, monkeypatch, question, verdict_schema):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)  # the usual env var: no key in the config at all
    cache_path = tmp_path / "cache.sqlite"
    with caplog.at_level(logging.DEBUG):
        llm = make_llm(f"openai:smollm2@{llama_server.base_url}", LLMConfig(cache_path=cache_path, progress=False))
        assert llm.chat(question, verdict_schema, params={"max_tokens": 40}).ok
        assert llm.score(question, ["Yes", "No"]).ok
        lc = make_llm(chat_openai(llama_server, api_key), LLMConfig(cache_path=cache_path, progress=False))
        assert lc.chat(question, params={"max_tokens": 8}).ok
        # a failing call: its error text and fallback event must be clean too
        wrong = make_llm(f"openai:smollm2@{llama_server.base_url}",
                         LLMConfig(api_key=api_key + "-wrong", progress=False))
        failed = wrong.chat(question, fallback="n/a")
        assert not failed.ok
    assert "LLM chat fallback" in caplog.text and "POST" in caplog.text  # the logs were really captured
    report = llm.accountant.write(tmp_path / "report.json")
    artefacts = {
        "logs": caplog.text,
        "report": report.read_text(),
        "langchain report": json.dumps(lc.accountant.report()),
        "failure report": json.dumps(wrong.accountant.report()) + (failed.error or ""),
        "repr": repr(llm) + repr(lc) + json.dumps(llm.backend.identity()) + json.dumps(lc.backend.identity()),
    }
    for path in tmp_path.glob("cache.sqlite*"):
        artefacts[path.name] = path.read_bytes().decode("latin-1")
    for name, text in artefacts.items():
        assert api_key not in text, f"API key leaked into {name}"
    assert wrong.accountant.secrets == [api_key + "-wrong"]
