"""Fixtures of the LLM-layer tests: a scripted fake backend for the logic, the real SmolLM2 file,
and a real ``python -m llama_cpp.server`` on 127.0.0.1 (session-scoped, reused by every test)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from recarena.agents.llm.local_server import LocalLlamaServer
from recarena.agents.llm.scripted import ScriptedBackend

API_KEY = "sk-recarena-test-7f3a9c2e5b1d"  # the secret the secrets test greps for


@pytest.fixture
def scripted() -> type[ScriptedBackend]:
    return ScriptedBackend


@pytest.fixture(scope="session")
def gguf_path(require) -> Path:
    require("llama_cpp")
    from recarena.agents.llm.embedded import smollm2_gguf_path

    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def embedded_backend(gguf_path):
    from recarena.agents.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(gguf_path, n_threads=1, seed=0)
    yield backend
    backend.close()


class LlamaServer(LocalLlamaServer):
    """The library's local server, with the test suite's API key by default."""

    def __init__(self, model: Path, log_dir: Path, api_key: str | None = API_KEY, port: int | None = None):
        super().__init__(model, log_dir, api_key=api_key, port=port)


@pytest.fixture(scope="session")
def llama_server(gguf_path, tmp_path_factory) -> Iterator[LlamaServer]:
    server = LlamaServer(gguf_path, tmp_path_factory.mktemp("llama_server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_factory(gguf_path, tmp_path) -> Iterator[Callable[..., LlamaServer]]:
    """Start extra servers for destructive tests; all are stopped afterwards."""
    started: list[LlamaServer] = []

    def make(**kwargs) -> LlamaServer:
        server = LlamaServer(gguf_path, tmp_path, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 that injects real faults from a plan, then forwards.

    Plan items, one per incoming request: "pass", "500", "malformed" (200 with a broken JSON
    body), or ("delay", seconds) (hold the connection, then drop it without answering).
    """

    def __init__(self, upstream_port: int) -> None:
        import http.client
        import http.server

        proxy = self
        self.upstream_port = upstream_port
        self.plan: list = []
        self.served: list[str] = []
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    action = proxy.plan.pop(0) if proxy.plan else "pass"
                    proxy.served.append(action if isinstance(action, str) else action[0])
                if action == "500":
                    return self._reply(500, b'{"error": {"message": "injected server error"}}')
                if action == "malformed":
                    return self._reply(200, b'{"id": "chatcmpl-1", "choices": [{"message": {"content": ')
                if isinstance(action, tuple) and action[0] == "delay":
                    time.sleep(action[1])
                    self.close_connection = True
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream.request("POST", self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self._reply(response.status, response.read())
                upstream.close()

            do_GET = do_POST

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fault_proxy(llama_server) -> Iterator[FaultProxy]:
    proxy = FaultProxy(llama_server.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def api_key() -> str:
    """The key the session server demands; the secrets test greps every artefact for it."""
    return API_KEY


@pytest.fixture(scope="session")
def question() -> list[dict[str, str]]:
    """A yes/no question every backend test asks."""
    return [
        {"role": "system", "content": "You are a movie fan who loves science fiction and hates horror."},
        {"role": "user", "content": "Would you like to watch the science fiction film Star Wars? Answer Yes or No."},
    ]


@pytest.fixture(scope="session")
def verdict_schema() -> type:
    """The schema of a structured answer every backend test asks for."""
    from typing import Literal

    from pydantic import BaseModel, Field

    class Verdict(BaseModel):
        decision: Literal["watch", "skip"]
        stars: int = Field(ge=1, le=5)

    return Verdict
