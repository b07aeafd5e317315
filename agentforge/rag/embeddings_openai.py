"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, `agentforge serve`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class OpenAIEmbedder:
    """`OpenAIEmbedder("all-MiniLM-L6-v2", base_url="http://127.0.0.1:8000/v1")`; `dim` is learnt
    from the first answer when not given. Vectors come back unit length, as from `LocalEmbedder`."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, batch_size: int = 256, timeout: float = 60.0) -> None:
        from openai import OpenAI

        if not model or not isinstance(model, str):
            raise ValueError("model must be a non-empty string")
        self.name = f"openai:{model}"
        self.model, self.batch_size = model, batch_size
        self.client = OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)
        self.dim = dim or len(self.embed(["dimension probe"])[0])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("embed() takes a list of strings")
        vectors = []
        for start in range(0, len(texts), self.batch_size):
            answer = self.client.embeddings.create(model=self.model, input=list(texts[start:start + self.batch_size]))
            vectors += [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]
        out = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
