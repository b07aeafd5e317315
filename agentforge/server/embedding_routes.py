"""`/v1/embeddings`: OpenAI's embeddings endpoint over the local embedding model (all-MiniLM-L6-v2
by default, loaded at the first request), so `OpenAIEmbedder` and any OpenAI client can use it."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from .errors import APIError
from .openai_routes import ServerState, guard, server_state

MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000

router = APIRouter(prefix="/v1")
_load_lock = threading.Lock()


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str] = Field(description="a text or a list of texts (token arrays are not accepted)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


def _embedder(request: Request):
    """The app's embedder, made at first use (loading the model takes a second)."""
    with _load_lock:
        if getattr(request.app.state, "embedder", None) is None:
            from agentforge.rag import LocalEmbedder

            state: ServerState = request.app.state.server
            request.app.state.embedder = LocalEmbedder(state.config.embedding_model)
        return request.app.state.embedder


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, who: str = Depends(guard),
                     state: ServerState = Depends(server_state)):
    names = {state.config.embedding_name, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
    if body.model not in names:
        raise APIError(404, f"The embedding model `{body.model}` does not exist. Available: {state.config.embedding_name}",
                       param="model", code="model_not_found")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > MAX_INPUTS:
        raise APIError(400, f"input must hold 1 to {MAX_INPUTS} texts", param="input")
    if any(not t or len(t) > MAX_INPUT_CHARS for t in texts):
        raise APIError(400, f"every input text must be non-empty and at most {MAX_INPUT_CHARS} characters", param="input")
    embedder = await asyncio.to_thread(_embedder, request)
    if body.dimensions is not None and body.dimensions != embedder.dim:
        raise APIError(400, f"{body.model} makes {embedder.dim}-dimensional vectors; dimensions cannot change that",
                       param="dimensions")
    vectors = await asyncio.to_thread(embedder.embed, texts)
    tokens = sum(len(ids) for ids in embedder.tokenizer(texts, truncation=True, max_length=embedder.max_length)["input_ids"])
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.tobytes()).decode() if body.encoding_format == "base64" else v.tolist()}
            for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": body.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
