"""Forwarding a request to an OpenAI-compatible upstream, its answer guarded like our own."""

from __future__ import annotations

import json

import httpx
from fastapi.responses import JSONResponse, Response

from .guards import Guardrails, StreamGuard
from .openai_shapes import guarded, sse
from .routing import Upstream

BACKEND_HEADER = "X-AgentForge-Backend"


class Unavailable(Exception):
    """An upstream failed (connection, 5xx) or is overloaded (429): try the next backend."""


async def proxy(upstream: Upstream, path: str, body, model: str, rails: Guardrails) -> Response:
    """Forward a request to an OpenAI-compatible upstream; its errors other than 5xx/429 go back
    to the client as they are; output guardrails apply to its answers too."""
    payload = {**body.model_dump(exclude_none=True), "model": upstream.model or model}
    request = upstream.client.build_request("POST", upstream.url + path, json=payload, headers=upstream.headers())
    try:
        response = await upstream.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise Unavailable(f"{upstream.name}: {type(exc).__name__}: {exc}") from exc
    headers = {BACKEND_HEADER: upstream.name}
    if response.status_code >= 500 or response.status_code == 429:
        await response.aclose()
        raise Unavailable(f"{upstream.name}: HTTP {response.status_code}")
    if response.status_code >= 400 or not body.stream:
        content = await response.aread()
        await response.aclose()
        if response.status_code >= 400:
            return Response(content, status_code=response.status_code, media_type="application/json", headers=headers)
        data = json.loads(content)
        data["model"] = body.model
        for choice in data.get("choices", []):
            holder = choice.get("message") or choice
            key = "content" if "message" in choice else "text"
            if isinstance(holder.get(key), str):
                holder[key], finish = guarded(holder[key], choice.get("finish_reason"), rails)
                choice["finish_reason"] = finish
        return JSONResponse(data, headers=headers)

    async def chunks():
        guard = StreamGuard(rails)
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                chunk["model"] = body.model
                for choice in chunk.get("choices", []):
                    holder = choice.get("delta") or choice
                    key = "content" if "delta" in choice else "text"
                    if isinstance(holder.get(key), str):
                        finish = choice.get("finish_reason")
                        holder[key], choice["finish_reason"] = guard.apply(choice.get("index", 0), holder[key],
                                                                           finish, final=bool(finish))
                yield chunk
        finally:
            await response.aclose()

    return sse(chunks(), headers)
