"""Helpers for the MCP tests: a free port, our MCP server on uvicorn in a thread, and server processes."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest
import uvicorn

from agentforge.tools.mcp_server import MCPToolServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpThread:
    """An MCPToolServer on uvicorn in a thread, on a fixed port (so it can be restarted)."""

    def __init__(self, server: MCPToolServer, port: int, token: str | None = None) -> None:
        self.server, self.port, self.token = server, port, token
        self.url = f"http://127.0.0.1:{port}/mcp"

    def start(self) -> HttpThread:
        config = uvicorn.Config(self.server.http_app(token=self.token), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.uvicorn.started:
            assert time.time() < deadline, "the HTTP server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve_http():
    """Start MCPToolServers over HTTP (`serve_http(server, port=None, token=None)`); stopped after the test."""
    started = []

    def start(server: MCPToolServer, port: int | None = None, token: str | None = None) -> HttpThread:
        http = HttpThread(server, port or free_port(), token).start()
        started.append(http)
        return http

    yield start
    for http in started:
        http.stop()


@pytest.fixture(scope="module")
def spawn():
    """Start server processes listening on a free port: `spawn(argv, env)` with "{port}" in argv or
    env replaced, returns `(process, port)` once the port accepts connections; all are stopped
    after the module."""
    started = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
        port = free_port()
        fill = {k: v.replace("{port}", str(port)) for k, v in (env or {}).items()}
        proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], env={**os.environ, **fill},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc, port
            except OSError:
                assert time.time() < deadline and proc.poll() is None, f"{argv[0]} did not start listening"
                time.sleep(0.1)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def peers():
    """`peers(*paths, what=...)`: skip when npm peers that `make mcp-peers` installs are missing —
    fail instead on CI, which must have them."""

    def require(*paths, what: str) -> None:
        if not all(path.exists() for path in paths):
            if os.environ.get("CI"):
                pytest.fail(f"{what} missing; `make mcp-peers` installs them")
            pytest.skip(f"{what} missing; run `make mcp-peers` to install them")

    return require
