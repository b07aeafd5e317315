"""The OpenAI-compatible endpoints: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

A LoRA adapter loaded into the engine is a model of its own, `<model>:<adapter>`.

Each request passes the guards (API key, rate limit, input guardrails), is routed to the embedded
engine or an upstream (falling back past failures), and comes back as OpenAI's JSON or SSE chunks.
A client that disconnects mid-stream aborts its request in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from agentforge.engine import RequestOutput

from .config import ServerConfig
from .errors import APIError
from .guards import Guardrails, RateLimiter, check_api_key
from .metrics import Metrics
from .openai_shapes import chat_chunks, chat_response, completion_chunks, completion_response, sse
from .proxy import BACKEND_HEADER, Unavailable, proxy
from .routing import EMBEDDED, Router
from .schemas import ChatCompletionRequest, CompletionRequest


@dataclass
class ServerState:
    """What the routes share: the engine, the settings and the guards built from them."""

    llm: object  # an AsyncLLM
    config: ServerConfig
    model_name: str
    metrics: Metrics
    router: Router
    limiter: RateLimiter = field(init=False)
    rails: Guardrails = field(init=False)
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.config.rate_limit_rpm, self.config.rate_limit_tpm)
        self.rails = Guardrails(self.config.deny_patterns, self.config.redact_pii, self.config.max_output_chars)


def server_state(request: Request) -> ServerState:
    return request.app.state.server


async def guard(request: Request, state: ServerState = Depends(server_state)) -> str:
    """API key (401) and rate limits (429 with Retry-After); returns who is asking."""
    try:
        key = check_api_key(request.headers.get("authorization"), state.config.api_keys)
    except PermissionError as exc:
        raise APIError(401, str(exc), "invalid_request_error", code="invalid_api_key") from exc
    who = key or (request.client.host if request.client else "anonymous")
    wait = state.limiter.admit(who)
    if wait is not None:
        raise APIError(429, f"Rate limit reached; retry in {wait} s", "rate_limit_exceeded",
                       code="rate_limit_exceeded", headers={"Retry-After": str(wait)})
    return who


router = APIRouter(prefix="/v1")


@router.get("/models")
async def models(who: str = Depends(guard), state: ServerState = Depends(server_state)):
    data = [{"id": m, "object": "model", "created": state.created, "owned_by": "agentforge"} for m in state.router.models]
    data += [{"id": f"{state.model_name}:{name}", "object": "model", "created": state.created, "owned_by": "agentforge",
              "parent": state.model_name, "root": str(adapter.path)} for name, adapter in state.llm.engine.loras.items()]
    return {"object": "list", "data": data}


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, who: str = Depends(guard),
                           state: ServerState = Depends(server_state)):
    _check_input(state, [text for m in body.messages for text in _texts(m.get("content"))])
    return await _unless_disconnected(request, _dispatch(state, body, who, "/chat/completions", _embedded_chat))


def _texts(content) -> list[str]:
    """The text a message's content holds (a string, or its text parts): what input rails check."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, who: str = Depends(guard),
                      state: ServerState = Depends(server_state)):
    if isinstance(body.prompt, list) and body.prompt and isinstance(body.prompt[0], str):
        if len(body.prompt) != 1:
            raise APIError(400, "only one prompt per request is supported", param="prompt")
        body.prompt = body.prompt[0]
    if isinstance(body.prompt, str):
        _check_input(state, [body.prompt])
    return await _unless_disconnected(request, _dispatch(state, body, who, "/completions", _embedded_completion))


async def _unless_disconnected(request: Request, work) -> Response:
    """Run `work` (a whole non-streamed answer, or the start of a stream) but cancel it when the
    client goes away first — a client that timed out must not leave the engine generating for
    nobody. (Streams watch for the disconnect themselves once they start.)"""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return Response(status_code=499)  # the client closed the request; nobody reads this


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body was read already, so that is all that comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _check_input(state: ServerState, texts: list[str]) -> None:
    refusal = state.rails.check_input("\n".join(texts))
    if refusal is not None:
        raise APIError(400, refusal, code="content_policy_violation")


async def _dispatch(state: ServerState, body, who: str, path: str, embedded) -> Response:
    """Try the backends the router names for this request, in order; fall back past failures."""
    resolved = state.router.resolve(body.model)
    base, _, adapter = body.model.rpartition(":")
    if resolved is None and base and state.router.resolve(base) == state.router.embedded_model:
        if adapter not in state.llm.engine.loras:
            raise APIError(404, f"The model `{body.model}` does not exist: no adapter `{adapter}` is loaded "
                                f"(loaded: {', '.join(sorted(state.llm.engine.loras)) or 'none'})",
                           param="model", code="model_not_found")
        return await embedded(state, body, who, adapter)
    if resolved is None:
        raise APIError(404, f"The model `{body.model}` does not exist. Available: {', '.join(state.router.models)}",
                       param="model", code="model_not_found")
    failures = []
    for name in state.router.candidates(resolved, body.model_dump(exclude_none=True)):
        if name == EMBEDDED:
            if state.config.max_queue is not None and state.llm.stats().waiting > state.config.max_queue:
                failures.append(f"{EMBEDDED}: overloaded")
                continue
            return await embedded(state, body, who)
        try:
            return await proxy(state.router.upstreams[name], path, body, resolved, state.rails)
        except Unavailable as exc:
            failures.append(str(exc))
    raise APIError(503, "no backend could serve the request: " + "; ".join(failures), "server_error",
                   code="backends_unavailable")


async def _embedded_chat(state: ServerState, body: ChatCompletionRequest, who: str, lora: str | None = None) -> Response:
    if body.logprobs and body.top_logprobs is None:
        body.top_logprobs = 0
    params = dataclasses.replace(body.sampling_params(body.top_logprobs if body.logprobs else None), lora=lora)
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    first, stream = await _start(state, state.llm.chat(
        body.messages, params, rid, tools=body.tools, tool_choice=body.tool_choice,
        parallel_tool_calls=body.parallel_tool_calls, response_format=body.response_format), who)
    headers = {BACKEND_HEADER: EMBEDDED}
    tokenizer = state.llm.tokenizer
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse(chat_chunks(stream, rid, body.model, tokenizer, body, include_usage, state.rails), headers)
    final = first
    async for out in stream:
        final = out
    return JSONResponse(chat_response(final, rid, body.model, tokenizer, body, state.rails), headers=headers)


async def _embedded_completion(state: ServerState, body: CompletionRequest, who: str,
                               lora: str | None = None) -> Response:
    params = dataclasses.replace(body.sampling_params(body.logprobs), lora=lora)
    rid = f"cmpl-{uuid.uuid4().hex}"
    first, stream = await _start(state, state.llm.generate(body.prompt, params, rid), who)
    headers = {BACKEND_HEADER: EMBEDDED}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse(completion_chunks(stream, rid, body.model, body, include_usage, state.rails), headers)
    final = first
    async for out in stream:
        final = out
    return JSONResponse(completion_response(final, rid, body.model, state.llm.tokenizer, body, state.rails),
                        headers=headers)


async def _start(state: ServerState, stream: AsyncIterator[RequestOutput], who: str):
    """The first output (validation errors surface here, before any byte is sent), and the
    stream wrapped to record tokens, latency and rate-limit spend."""
    started = time.perf_counter()
    try:
        first = await stream.__anext__()
    except StopAsyncIteration as exc:  # pragma: no cover - the engine always yields once
        raise APIError(500, "the engine produced no output", "server_error") from exc
    limit = state.config.max_prompt_tokens
    if limit is not None and len(first.prompt_token_ids) > limit:
        await stream.aclose()
        raise APIError(400, f"the prompt has {len(first.prompt_token_ids)} tokens; this server accepts at most "
                            f"{limit}", param="messages", code="context_length_exceeded")
    metrics = state.metrics

    async def observed():
        first_at, last, out = None, first, first
        try:
            while True:
                if first_at is None and out.usage.completion_tokens:
                    first_at = time.perf_counter()
                    metrics.ttft.observe(first_at - started)
                last = out
                yield out
                out = await stream.__anext__()
        except StopAsyncIteration:
            pass
        finally:
            await stream.aclose()
            tokens = last.usage.completion_tokens
            metrics.prompt_tokens.inc(last.usage.prompt_tokens)
            metrics.generation_tokens.inc(tokens)
            if first_at is not None and tokens > 1:
                metrics.tpot.observe((time.perf_counter() - first_at) / (tokens - 1))
            state.limiter.spend(who, last.usage.total_tokens)

    return first, observed()
