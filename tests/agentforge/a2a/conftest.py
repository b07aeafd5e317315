"""Helpers for the A2A tests: our A2A server and any ASGI app on uvicorn in a thread."""

from __future__ import annotations

import pytest
from _a2a_helpers import UvicornThread, free_port

from agentforge.a2a import A2AServer


@pytest.fixture
def serve_a2a():
    """`serve_a2a(graph, **A2AServer options)` runs the graph as an A2A server; returns its URL."""
    running = []

    def serve(graph, **options) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        running.append(UvicornThread(A2AServer(graph, url=url, **options).app(), port))
        return url

    yield serve
    for server in running:
        server.stop()


@pytest.fixture
def serve_asgi():
    """`serve_asgi(app)` runs any ASGI app on a free port; returns its URL."""
    running = []

    def serve(app) -> str:
        port = free_port()
        running.append(UvicornThread(app, port))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server in running:
        server.stop()
