"""A real llama.cpp OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1, in a subprocess.

The endpoint tests and the concurrency benchmark talk to it exactly as to vLLM or a hosted API::

    with LocalLlamaServer(smollm2_gguf_path(), log_dir) as server:
        llm = make_llm(f"openai:smollm2@{server.base_url}")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalLlamaServer:
    """``llama_cpp.server`` serving `model` on 127.0.0.1, with start, kill (SIGKILL) and stop."""

    def __init__(self, model: Path, log_dir: Path, *, api_key: str | None = None, port: int | None = None,
                 n_threads: int = 1, n_ctx: int = 2048) -> None:  # fmt: skip
        self.model, self.log_dir, self.api_key = Path(model), Path(log_dir), api_key
        self.port = port or free_port()
        self.n_threads, self.n_ctx = n_threads, n_ctx
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it answers; RuntimeError naming its log otherwise."""
        self.starts += 1
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads), "--seed", "0"]  # fmt: skip
        if self.api_key:
            command += ["--api_key", self.api_key]
        # Passive OpenMP waits: spinning threads crawl when the cores are shared with the caller.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"llama_server_{self.port}_{self.starts}.log", "w")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=1)
                return
            except urllib.error.HTTPError:  # 401 without a key: it is up
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"llama_cpp.server did not come up on port {self.port} in {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "LocalLlamaServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
