"""Shared fixtures of the application-layer tests (RAG, eval, tracing): the local embedding model
(loaded once), the fixture corpus of bench/_rag_corpus.py (40 documents in eight formats, 160
questions) indexed once, and a stand-in LangSmith endpoint."""

from __future__ import annotations

import email
import email.policy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))


@pytest.fixture(scope="session")
def embedder():
    from agentforge.rag import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from _rag_corpus import build_corpus

    folder = tmp_path_factory.mktemp("rag-corpus")
    return folder, build_corpus(folder)


@pytest.fixture(scope="session")
def corpus_kb(tmp_path_factory, corpus, embedder):
    from agentforge.rag import KnowledgeBase

    kb = KnowledgeBase("corpus", path=tmp_path_factory.mktemp("kb"), embedder=embedder)
    stats = kb.ingest(corpus[0])
    assert not stats.errors and stats.chunks > 150
    return kb


@pytest.fixture
def langsmith_server():
    """A stand-in LangSmith endpoint: `runs` maps run id -> the run as posted (fields, inputs, outputs)."""
    runs: dict[str, dict] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._reply({})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path.endswith("/runs/multipart"):
                message = email.message_from_bytes(
                    f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
                for part in message.iter_parts():
                    kind, run_id, *field = part.get_param("name", header="content-disposition").split(".")
                    value = json.loads(part.get_payload(decode=True))
                    run = runs.setdefault(run_id, {})
                    if field:
                        run[field[0]] = value
                    else:
                        run.update(value)
            self._reply({})

        def _reply(self, data):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(data).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", runs
    server.shutdown()
