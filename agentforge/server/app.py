"""The OpenAI-compatible HTTP API over the embedded engine (FastAPI), and the chat app at `/`.

`POST /v1/chat/completions` and `POST /v1/completions` (streamed as OpenAI's SSE chunks, tool-call
deltas included), `GET /v1/models`, `GET /health`. Errors use OpenAI's body
`{"error": {"message", "type", "param", "code"}}`. A client that disconnects mid-stream aborts its
request in the engine.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentforge.engine import ContextLengthError, EngineError, InvalidRequestError, RequestOutput

from .config import ServerConfig
from .guards import Guardrails, RateLimiter, StreamGuard, check_api_key
from .metrics import Metrics
from .routing import EMBEDDED, Router, Upstream
from .schemas import ChatCompletionRequest, CompletionRequest

BACKEND_HEADER = "X-AgentForge-Backend"
STATIC = Path(__file__).parent / "static"


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status, headers=headers)


def create_app(llm, model_name: str | None = None, config: ServerConfig | None = None) -> FastAPI:
    """An app serving `llm` (an `AsyncLLM`) as `model_name`, with the guards `config` turns on."""
    config = config or ServerConfig()
    model_name = model_name or config.served_model_name or config.model
    app = FastAPI(title="AgentForge", version="0.1.0")
    created = int(time.time())
    metrics = Metrics(llm)
    limiter = RateLimiter(config.rate_limit_rpm, config.rate_limit_tpm)
    rails = Guardrails(config.deny_patterns, config.redact_pii, config.max_output_chars)
    router = Router.from_config(model_name, config.upstreams, config.aliases, config.routes)
    app.state.metrics, app.state.llm, app.state.router = metrics, llm, router

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return error_response(413, f"request body is larger than {config.max_body_bytes} bytes",
                                  code="request_too_large")
        response = await call_next(request)
        if request.url.path.startswith("/v1/") and request.method == "POST":
            backend = response.headers.get(BACKEND_HEADER, "none")
            metrics.requests.labels(request.url.path, str(response.status_code), backend).inc()
        return response

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return error_response(400, f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}")
        location = [str(p) for p in first.get("loc", ()) if p != "body"]
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                            for e in errors)
        return error_response(400, message, param=".".join(location) or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "not_found_error" if exc.status_code == 404 else
                              "invalid_request_error")

    @app.exception_handler(EngineError)
    async def engine_error(request: Request, exc: EngineError):
        code = "context_length_exceeded" if isinstance(exc, ContextLengthError) else None
        if isinstance(exc, InvalidRequestError):
            return error_response(400, str(exc), code=code)
        return error_response(500, str(exc), "server_error")

    async def guard(request: Request) -> str:
        """API key (401) and rate limits (429 with Retry-After); returns who is asking."""
        try:
            key = check_api_key(request.headers.get("authorization"), config.api_keys)
        except PermissionError as exc:
            raise APIError(401, str(exc), "invalid_request_error", code="invalid_api_key") from exc
        who = key or (request.client.host if request.client else "anonymous")
        wait = limiter.admit(who)
        if wait is not None:
            raise APIError(429, f"Rate limit reached; retry in {wait} s", "rate_limit_exceeded",
                           code="rate_limit_exceeded", headers={"Retry-After": str(wait)})
        return who

    def check_model(name: str) -> str:
        resolved = router.resolve(name)
        if resolved is None:
            raise APIError(404, f"The model `{name}` does not exist. Available: {', '.join(router.models)}",
                           param="model", code="model_not_found")
        return resolved

    async def dispatch(body, who: str, path: str, embedded) -> Response:
        """Try the backends the router names for this request, in order; fall back past failures."""
        resolved = check_model(body.model)
        failures = []
        for name in router.candidates(resolved, body.model_dump(exclude_none=True)):
            if name == EMBEDDED:
                if config.max_queue is not None and len(llm.engine.scheduler.waiting) > config.max_queue:
                    failures.append(f"{EMBEDDED}: overloaded")
                    continue
                return await embedded(body, who)
            try:
                return await _proxy(router.upstreams[name], path, body, resolved, rails)
            except _Unavailable as exc:
                failures.append(str(exc))
        raise APIError(503, "no backend could serve the request: " + "; ".join(failures), "server_error",
                       code="backends_unavailable")
    def check_input(texts: list[str]) -> None:
        refusal = rails.check_input("\n".join(texts))
        if refusal is not None:
            raise APIError(400, refusal, code="content_policy_violation")

    async def start(stream, who: str):
        """The first output (validation errors surface here, before any byte is sent), and the
        stream wrapped to record tokens, latency and rate-limit spend."""
        started = time.perf_counter()
        first = await _first(stream)
        if config.max_prompt_tokens is not None and len(first.prompt_token_ids) > config.max_prompt_tokens:
            await stream.aclose()
            raise APIError(400, f"the prompt has {len(first.prompt_token_ids)} tokens; this server accepts at most "
                                f"{config.max_prompt_tokens}", param="messages", code="context_length_exceeded")

        async def observed():
            seen_first, first_at, last = False, None, first
            try:
                out = first
                while True:
                    if not seen_first and out.usage.completion_tokens:
                        seen_first, first_at = True, time.perf_counter()
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
                limiter.spend(who, last.usage.total_tokens)

        return first, observed()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def chat_page():
        return FileResponse(STATIC / "index.html")

    @app.get("/widget.js", include_in_schema=False)
    async def widget():
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(who: str = Depends(guard)):
        return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "agentforge"}
                                           for m in router.models]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, who: str = Depends(guard)):
        check_input([m.get("content") for m in body.messages if isinstance(m.get("content"), str)])
        return await dispatch(body, who, "/chat/completions", embedded_chat)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, who: str = Depends(guard)):
        if isinstance(body.prompt, list) and body.prompt and isinstance(body.prompt[0], str):
            if len(body.prompt) != 1:
                raise APIError(400, "only one prompt per request is supported", param="prompt")
            body.prompt = body.prompt[0]
        if isinstance(body.prompt, str):
            check_input([body.prompt])
        return await dispatch(body, who, "/completions", embedded_completion)

    async def embedded_chat(body: ChatCompletionRequest, who: str) -> Response:
        if body.logprobs and body.top_logprobs is None:
            body.top_logprobs = 0
        params = body.sampling_params(body.top_logprobs if body.logprobs else None)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        first, stream = await start(llm.chat(
            body.messages, params, rid, tools=body.tools, tool_choice=body.tool_choice,
            parallel_tool_calls=body.parallel_tool_calls, response_format=body.response_format), who)
        headers = {BACKEND_HEADER: EMBEDDED}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _chat_chunks(stream, rid, body.model, llm.tokenizer, body, include_usage, rails)
            return _sse(chunks, headers)
        final = first
        async for out in stream:
            final = out
        return JSONResponse(_chat_response(final, rid, body.model, llm.tokenizer, body, rails), headers=headers)

    async def embedded_completion(body: CompletionRequest, who: str) -> Response:
        params = body.sampling_params(body.logprobs)
        rid = f"cmpl-{uuid.uuid4().hex}"
        first, stream = await start(llm.generate(body.prompt, params, rid), who)
        headers = {BACKEND_HEADER: EMBEDDED}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_completion_chunks(stream, rid, body.model, body, include_usage, rails), headers)
        final = first
        async for out in stream:
            final = out
        return JSONResponse(_completion_response(final, rid, body.model, llm.tokenizer, body, rails), headers=headers)

    return app


class _Unavailable(Exception):
    """An upstream failed (connection, 5xx) or is overloaded (429): try the next backend."""


async def _proxy(upstream: Upstream, path: str, body, model: str, rails: Guardrails) -> Response:
    """Forward a request to an OpenAI-compatible upstream; its errors other than 5xx/429 go back
    to the client as they are; output guardrails apply to its answers too."""
    payload = {**body.model_dump(exclude_none=True), "model": upstream.model or model}
    request = upstream.client.build_request("POST", upstream.url + path, json=payload, headers=upstream.headers())
    try:
        response = await upstream.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _Unavailable(f"{upstream.name}: {type(exc).__name__}: {exc}") from exc
    headers = {BACKEND_HEADER: upstream.name}
    if response.status_code >= 500 or response.status_code == 429:
        await response.aclose()
        raise _Unavailable(f"{upstream.name}: HTTP {response.status_code}")
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
                holder[key], finish = _guarded(holder[key], choice.get("finish_reason"), rails)
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

    return _sse(chunks(), headers)


async def _first(stream: AsyncIterator[RequestOutput]) -> RequestOutput:
    try:
        return await stream.__anext__()
    except StopAsyncIteration as exc:  # pragma: no cover - the engine always yields once
        raise APIError(500, "the engine produced no output", "server_error") from exc


def _sse(chunks, headers: dict) -> StreamingResponse:
    async def body():
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:  # a client that went away: close the engine stream, which aborts the request
            await chunks.aclose()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", **headers})


def _finish_reason(completion) -> str | None:
    reason = completion.finish_reason
    return {"abort": "stop", "error": "stop"}.get(reason, reason) if reason else None


def _usage(out: RequestOutput) -> dict:
    return {"prompt_tokens": out.usage.prompt_tokens, "completion_tokens": out.usage.completion_tokens,
            "total_tokens": out.usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": out.usage.cached_tokens}}


def _logprobs(tokenizer, logprobs, start: int = 0) -> list[dict] | None:
    if logprobs is None:
        return None

    def entry(token_id: int, logprob: float) -> dict:
        text = tokenizer.decode([token_id])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

    return [{**entry(lp.token_id, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top.items()]}
            for lp in logprobs[start:]]


def _tool_calls(completion) -> list[dict] | None:
    if not completion.tool_calls:
        return None
    return [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in completion.tool_calls]


def _json_refusal(body: ChatCompletionRequest, text: str) -> str | None:
    """With a JSON response_format, why the answer is not valid JSON (e.g. cut off by max_tokens)."""
    if not body.response_format or body.response_format.get("type") not in ("json_object", "json_schema"):
        return None
    try:
        json.loads(text)
        return None
    except json.JSONDecodeError as exc:
        return f"the answer is not valid JSON ({exc.msg} at character {exc.pos}); raise max_tokens"


def _guarded(text: str, finish_reason: str | None, rails: Guardrails) -> tuple[str, str | None]:
    """An answer after the output guardrails, and its finish reason ("content_filter" if withheld)."""
    if not rails.active:
        return text, finish_reason
    refusal = rails.check_output(text)
    if refusal is not None:
        return refusal, "content_filter"
    limited = rails.limit(rails.redact(text))
    return limited, "length" if len(limited) < len(rails.redact(text)) else finish_reason


def _chat_response(out: RequestOutput, rid: str, model: str, tokenizer, body: ChatCompletionRequest,
                   rails: Guardrails) -> dict:
    choices = []
    for c in out.outputs:
        text, finish = _guarded(c.text, _finish_reason(c), rails)
        message = {"role": "assistant", "content": text if (text or not c.tool_calls) else None}
        if c.tool_calls:
            message["tool_calls"] = _tool_calls(c)
        elif (refusal := _json_refusal(body, text)) is not None:
            message["content"], message["refusal"] = None, refusal
        choice = {"index": c.index, "message": message, "finish_reason": finish, "logprobs": None}
        if body.logprobs:
            choice["logprobs"] = {"content": _logprobs(tokenizer, c.logprobs)}
        choices.append(choice)
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model, "choices": choices,
            "usage": _usage(out), "system_fingerprint": None}


async def _stream(stream, chunks_of, base: dict, include_usage: bool) -> AsyncIterator[dict]:
    """The chunks of every engine output, then (if asked) a last chunk with the usage; closing this
    generator closes the engine stream, which aborts the request."""
    last = None
    try:
        async for out in stream:
            last = out
            for chunk in chunks_of(out):
                yield chunk
    finally:
        await stream.aclose()
    if include_usage and last is not None:
        yield {**base, "choices": [], "usage": _usage(last)}


def _chat_chunks(stream, rid: str, model: str, tokenizer, body: ChatCompletionRequest, include_usage: bool,
                 rails: Guardrails) -> AsyncIterator[dict]:
    created = int(time.time())
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
    sent_role: set[int] = set()
    logprob_counts: dict[int, int] = {}
    guard = StreamGuard(rails)
    texts: dict[int, str] = {}

    def chunks_of(out: RequestOutput):
        for c in out.outputs:
            delta: dict = {}
            if c.index not in sent_role:
                sent_role.add(c.index)
                delta["role"] = "assistant"
                delta["content"] = ""
            text, finish = guard.apply(c.index, c.delta, _finish_reason(c), final=c.finished)
            if text:
                delta["content"] = text
                texts[c.index] = texts.get(c.index, "") + text
            if c.finished and not c.tool_calls and (refusal := _json_refusal(body, texts.get(c.index, ""))):
                delta["refusal"] = refusal
            if c.tool_call_deltas:
                delta["tool_calls"] = [
                    {"index": d.index, **({"id": d.id, "type": "function"} if d.id else {}),
                     "function": {**({"name": d.name} if d.name else {}), "arguments": d.arguments}}
                    for d in c.tool_call_deltas
                ]
            choice = {"index": c.index, "delta": delta, "finish_reason": finish, "logprobs": None}
            if body.logprobs and c.logprobs is not None:
                start = logprob_counts.get(c.index, 0)
                logprob_counts[c.index] = len(c.logprobs)
                choice["logprobs"] = {"content": _logprobs(tokenizer, c.logprobs, start)}
            if delta or choice["finish_reason"]:
                yield {**base, "choices": [choice]}

    return _stream(stream, chunks_of, base, include_usage)


def _completion_response(out: RequestOutput, rid: str, model: str, tokenizer, body: CompletionRequest,
                         rails: Guardrails) -> dict:
    choices = []
    for c in out.outputs:
        answer, finish = _guarded(c.text, _finish_reason(c), rails)
        text = (out.prompt or "") + answer if body.echo else answer
        choice = {"index": c.index, "text": text, "finish_reason": finish, "logprobs": None}
        if body.logprobs is not None and c.logprobs is not None:
            tokens = _logprobs(tokenizer, c.logprobs)
            choice["logprobs"] = {"tokens": [t["token"] for t in tokens],
                                  "token_logprobs": [t["logprob"] for t in tokens],
                                  "top_logprobs": [{x["token"]: x["logprob"] for x in t["top_logprobs"]} for t in tokens]}
        choices.append(choice)
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model, "choices": choices,
            "usage": _usage(out)}


def _completion_chunks(stream, rid: str, model: str, body: CompletionRequest, include_usage: bool,
                       rails: Guardrails) -> AsyncIterator[dict]:
    base = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model}
    guard = StreamGuard(rails)

    def chunks_of(out: RequestOutput):
        for c in out.outputs:
            text, finish = guard.apply(c.index, c.delta, _finish_reason(c), final=c.finished)
            if text or finish:
                yield {**base, "choices": [{"index": c.index, "text": text, "finish_reason": finish, "logprobs": None}]}

    return _stream(stream, chunks_of, base, include_usage)
