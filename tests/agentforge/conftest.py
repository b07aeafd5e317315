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


def _wandb_records(run_file) -> tuple[dict, list[dict]]:
    """The summary and the history rows in an offline W&B run file (W&B's LevelDB-style log of
    protobuf records: 7-byte file header, 32 KiB blocks, records as crc32, length, type, then the fragment)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, pending, summary, history = run_file.read_bytes(), 7, b"", {}, []
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        pending, pos = pending + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last fragment of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "summary":
                summary.update((u.key, json.loads(u.value_json)) for u in record.summary.update if u.key)
            elif record.WhichOneof("record_type") == "history":
                history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return summary, history


@pytest.fixture(scope="session")
def wandb_summary():
    """`wandb_summary(run_file)`: the summary an offline W&B run file holds."""
    return lambda run_file: _wandb_records(run_file)[0]


@pytest.fixture(scope="session")
def wandb_history():
    """`wandb_history(run_file)`: the rows logged to an offline W&B run file, in order."""
    return lambda run_file: _wandb_records(run_file)[1]


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """W&B in offline mode, writing under `tmp_path`; its in-process settings are reset before and
    after (W&B keeps them from the first run of a process, WANDB_DIR included)."""
    import wandb

    wandb.teardown()
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, value)
    yield tmp_path
    wandb.teardown()
