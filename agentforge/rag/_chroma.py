"""ChromaDB clients and our embedding function for it: embedded `PersistentClient` by default,
`HttpClient` against a `chroma run` server; telemetry off; never Chroma's own default embedder
(it downloads a model at first use)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .embeddings import Embedder


def open_client(path: Path, url: str | None):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url is None:
        return chromadb.PersistentClient(path=str(path), settings=settings)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"url must look like http://host:port, got {url!r}")
    return chromadb.HttpClient(host=parsed.hostname, port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                               ssl=parsed.scheme == "https", settings=settings)


def embedding_function(embedder: Embedder):
    """`embedder` as a Chroma embedding function. Chroma stores its name and config with the
    collection, so a plain Chroma client opening it later gets a working function too (for a
    local model folder; other embedders say how to open the collection instead)."""
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import known_embedding_functions, register_embedding_function

    if "agentforge" in known_embedding_functions:
        return known_embedding_functions["agentforge"](embedder)

    @register_embedding_function
    class AgentForgeEmbedding(EmbeddingFunction[Documents]):
        def __init__(self, embedder: Embedder | None = None, config: dict | None = None) -> None:
            self.embedder = embedder
            self.config = config or {"embedder": embedder.name, "path": str(getattr(embedder, "path", ""))}

        def __call__(self, input: Documents) -> list[np.ndarray]:
            if self.embedder is None:
                if not self.config.get("path"):
                    raise ValueError(f"open this collection with agentforge.rag.KnowledgeBase and {self.config['embedder']}")
                from .embeddings import LocalEmbedder

                self.embedder = LocalEmbedder(self.config["path"])
            return list(self.embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "agentforge"

        def get_config(self) -> dict:
            return self.config

        @staticmethod
        def build_from_config(config: dict):
            return AgentForgeEmbedding(config=config)

    return AgentForgeEmbedding(embedder)
