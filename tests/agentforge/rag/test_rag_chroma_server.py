"""The scale-out path: knowledge bases on a real `chroma run` server on 127.0.0.1, shared by two
clients (as by two processes): what one ingests, the other finds, by dense and by BM25."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agentforge.rag import KnowledgeBase


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("chroma", path=str(Path(sys.executable).parent))
    server = subprocess.Popen([binary, "run", "--path", str(tmp_path_factory.mktemp("chroma-server")),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("chroma run did not start")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_two_clients_share_a_knowledge_base_on_the_server(tmp_path, chroma_url, corpus, embedder):
    folder, questions = corpus
    writer = KnowledgeBase("shared", path=tmp_path / "a", url=chroma_url, embedder=embedder)
    reader = KnowledgeBase("shared", path=tmp_path / "b", url=chroma_url, embedder=embedder)
    assert reader.count() == 0 and reader.search("anything at all", k=3, mode="bm25") == []

    stats = writer.ingest(folder)
    assert not stats.errors and reader.count() == stats.chunks
    question = questions[1]
    for mode in ("dense", "bm25", "hybrid"):  # the reader's BM25 index follows the writer's changes
        assert any(Path(h.source).name == question.file for h in reader.search(question.question, k=5, mode=mode))

    source = str(folder / question.file)
    assert writer.delete(source) > 0
    assert all(h.source != source for h in reader.search(question.question, k=10, mode="bm25"))
    assert reader.ingest(folder).added > 0 and source in writer.sources()


def test_a_bad_url_is_refused(tmp_path, embedder):
    with pytest.raises(ValueError, match="http://host:port"):
        KnowledgeBase("x1", path=tmp_path, url="ftp://example", embedder=embedder)
