"""Shared fixtures of the application-layer tests (RAG, eval): the local embedding model (loaded
once) and the fixture corpus of bench/_rag_corpus.py (40 documents in eight formats, 160
questions), indexed once."""

from __future__ import annotations

import sys
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
