"""The local embedder: unit vectors, input order kept through length-sorted batches, bfloat16 within
0.99 cosine of float32; a knowledge base refuses another model's vectors; `/v1/embeddings` on
the server answers OpenAI clients (and `OpenAIEmbedder`) and refuses bad requests with JSON 4xx."""

from __future__ import annotations

import numpy as np
import pytest

from agentforge.rag import KnowledgeBase, LocalEmbedder, OpenAIEmbedder

TEXTS = ["short", "a much longer sentence about the harbour office of a made-up company " * 5, "", "middle length text"]


def test_vectors_are_unit_length_and_in_input_order(embedder):
    together = embedder.embed(TEXTS)
    one_by_one = np.stack([embedder.embed([t])[0] for t in TEXTS])
    assert together.shape == (4, 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, one_by_one, atol=2e-2)
    assert (together[0] @ together[3]) < 0.99
    with pytest.raises(ValueError):
        embedder.embed("not a list")


def test_bfloat16_matches_float32(corpus):
    texts = [p.read_text()[:800] for p in sorted(corpus[0].glob("*.md"))]
    fp32 = LocalEmbedder(dtype="float32").embed(texts)
    bf16 = LocalEmbedder(dtype="bfloat16").embed(texts)
    assert (fp32 * bf16).sum(axis=1).min() >= 0.99


def test_a_knowledge_base_refuses_vectors_of_another_model(tmp_path, embedder):
    class Other:
        name, dim = "other-model", 384

        def embed(self, texts):
            return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    KnowledgeBase("mixed", path=tmp_path, embedder=embedder)
    with pytest.raises(ValueError, match="holds vectors of"):
        KnowledgeBase("mixed", path=tmp_path, embedder=Other())
    with pytest.raises(ValueError, match="knowledge base names"):
        KnowledgeBase("bad name!", path=tmp_path, embedder=embedder)


def test_server_embeddings_endpoint(serve_app, server_llm, embedder):
    import httpx
    from openai import OpenAI

    from agentforge.server import create_app

    base = serve_app(create_app(server_llm))
    client = OpenAI(base_url=f"{base}/v1", api_key="none")
    answer = client.embeddings.create(model="all-MiniLM-L6-v2", input=["hello world", "goodbye"])
    vectors = np.array([d.embedding for d in answer.data], dtype=np.float32)
    assert vectors.shape == (2, 384) and answer.usage.prompt_tokens > 0
    assert (vectors * embedder.embed(["hello world", "goodbye"])).sum(axis=1).min() > 0.99

    remote = OpenAIEmbedder("all-MiniLM-L6-v2", base_url=f"{base}/v1")
    assert remote.dim == 384 and remote.embed(["hello world"]).shape == (1, 384)

    for body, status in [({"model": "nope", "input": "x"}, 404), ({"model": "all-MiniLM-L6-v2", "input": []}, 400),
                         ({"model": "all-MiniLM-L6-v2", "input": [1, 2]}, 400), ({"input": "x"}, 400),
                         ({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 8}, 400)]:
        reply = httpx.post(f"{base}/v1/embeddings", json=body)
        assert reply.status_code == status and "message" in reply.json()["error"], body
