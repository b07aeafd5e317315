"""The OpenAI-compatible HTTP API over the embedded engine (FastAPI).

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

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentforge.engine import ContextLengthError, EngineError, InvalidRequestError, RequestOutput

from .schemas import ChatCompletionRequest, CompletionRequest

MAX_BODY_BYTES = 8 * 1024 * 1024


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status_code=status)


def create_app(llm, model_name: str) -> FastAPI:
    """An app serving `llm` (an `AsyncLLM`) under the model name `model_name`."""
    app = FastAPI(title="AgentForge", version="0.1.0")
    created = int(time.time())

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return error_response(413, f"request body is larger than {MAX_BODY_BYTES} bytes", code="request_too_large")
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code)

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

    def check_model(name: str) -> None:
        if name != model_name:
            raise APIError(404, f"The model `{name}` does not exist. Available: {model_name}", param="model",
                           code="model_not_found")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                             "owned_by": "agentforge"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest):
        check_model(body.model)
        if body.logprobs and body.top_logprobs is None:
            body.top_logprobs = 0
        params = body.sampling_params(body.top_logprobs if body.logprobs else None)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        stream = llm.chat(body.messages, params, rid, tools=body.tools, tool_choice=body.tool_choice,
                          parallel_tool_calls=body.parallel_tool_calls, response_format=body.response_format)
        first = await _first(stream)  # validation errors surface here, before any byte is sent
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_chat_chunks(first, stream, rid, model_name, llm.tokenizer, body, include_usage))
        final = first
        async for out in stream:
            final = out
        return _chat_response(final, rid, model_name, llm.tokenizer, body)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        check_model(body.model)
        if isinstance(body.prompt, list) and body.prompt and isinstance(body.prompt[0], str):
            if len(body.prompt) != 1:
                raise APIError(400, "only one prompt per request is supported", param="prompt")
            body.prompt = body.prompt[0]
        params = body.sampling_params(body.logprobs)
        rid = f"cmpl-{uuid.uuid4().hex}"
        stream = llm.generate(body.prompt, params, rid)
        first = await _first(stream)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_completion_chunks(first, stream, rid, model_name, llm.tokenizer, body, include_usage))
        final = first
        async for out in stream:
            final = out
        return _completion_response(final, rid, model_name, llm.tokenizer, body)

    return app


async def _first(stream: AsyncIterator[RequestOutput]) -> RequestOutput:
    try:
        return await stream.__anext__()
    except StopAsyncIteration as exc:  # pragma: no cover - the engine always yields once
        raise APIError(500, "the engine produced no output", "server_error") from exc


def _sse(chunks) -> StreamingResponse:
    async def body():
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:  # a client that went away: close the engine stream, which aborts the request
            await chunks.aclose()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


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


def _chat_response(out: RequestOutput, rid: str, model: str, tokenizer, body: ChatCompletionRequest) -> dict:
    choices = []
    for c in out.outputs:
        message = {"role": "assistant", "content": c.text if (c.text or not c.tool_calls) else None}
        if c.tool_calls:
            message["tool_calls"] = _tool_calls(c)
        if c.parsed is not None:
            message["parsed"] = json.loads(c.text)
        choice = {"index": c.index, "message": message, "finish_reason": _finish_reason(c), "logprobs": None}
        if body.logprobs:
            choice["logprobs"] = {"content": _logprobs(tokenizer, c.logprobs)}
        choices.append(choice)
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model, "choices": choices,
            "usage": _usage(out), "system_fingerprint": None}


async def _chat_chunks(first: RequestOutput, stream, rid: str, model: str, tokenizer, body: ChatCompletionRequest,
                       include_usage: bool) -> AsyncIterator[dict]:
    created = int(time.time())
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
    sent_role: set[int] = set()
    logprob_counts: dict[int, int] = {}
    last = first

    def chunks_of(out: RequestOutput):
        for c in out.outputs:
            delta: dict = {}
            if c.index not in sent_role:
                sent_role.add(c.index)
                delta["role"] = "assistant"
                delta["content"] = ""
            if c.delta:
                delta["content"] = c.delta
            if c.tool_call_deltas:
                delta["tool_calls"] = [
                    {"index": d.index, **({"id": d.id, "type": "function"} if d.id else {}),
                     "function": {**({"name": d.name} if d.name else {}), "arguments": d.arguments}}
                    for d in c.tool_call_deltas
                ]
            choice = {"index": c.index, "delta": delta, "finish_reason": _finish_reason(c), "logprobs": None}
            if body.logprobs and c.logprobs is not None:
                start = logprob_counts.get(c.index, 0)
                logprob_counts[c.index] = len(c.logprobs)
                choice["logprobs"] = {"content": _logprobs(tokenizer, c.logprobs, start)}
            if delta or choice["finish_reason"]:
                yield {**base, "choices": [choice]}

    try:
        for chunk in chunks_of(first):
            yield chunk
        async for out in stream:
            last = out
            for chunk in chunks_of(out):
                yield chunk
    finally:
        await stream.aclose()
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(last)}


def _completion_response(out: RequestOutput, rid: str, model: str, tokenizer, body: CompletionRequest) -> dict:
    choices = []
    for c in out.outputs:
        text = (out.prompt or "") + c.text if body.echo else c.text
        choice = {"index": c.index, "text": text, "finish_reason": _finish_reason(c), "logprobs": None}
        if body.logprobs is not None and c.logprobs is not None:
            tokens = _logprobs(tokenizer, c.logprobs)
            choice["logprobs"] = {"tokens": [t["token"] for t in tokens],
                                  "token_logprobs": [t["logprob"] for t in tokens],
                                  "top_logprobs": [{x["token"]: x["logprob"] for x in t["top_logprobs"]} for t in tokens]}
        choices.append(choice)
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model, "choices": choices,
            "usage": _usage(out)}


async def _completion_chunks(first: RequestOutput, stream, rid: str, model: str, tokenizer, body: CompletionRequest,
                             include_usage: bool) -> AsyncIterator[dict]:
    base = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model}
    last = first

    def chunks_of(out: RequestOutput):
        for c in out.outputs:
            if c.delta or c.finish_reason:
                yield {**base, "choices": [{"index": c.index, "text": c.delta, "finish_reason": _finish_reason(c),
                                            "logprobs": None}]}

    try:
        for chunk in chunks_of(first):
            yield chunk
        async for out in stream:
            last = out
            for chunk in chunks_of(out):
                yield chunk
    finally:
        await stream.aclose()
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(last)}
