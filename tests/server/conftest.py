"""One engine for the server tests, and apps on uvicorn on 127.0.0.1 (stopped after each module)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from agentforge.engine import AsyncLLM
from agentforge.server import ServerConfig

MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def server_llm(smollm2_path):
    """Configured as `agentforge serve` runs it: with n-gram speculative decoding."""
    llm = AsyncLLM(smollm2_path, max_model_len=2048, speculative_tokens=ServerConfig.speculative_tokens)
    yield llm
    llm.shutdown()


@pytest.fixture(scope="module")
def serve_app():
    """`serve_app(app)` runs an ASGI app on a free port and returns its base URL."""
    running = []

    def serve(app) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)
