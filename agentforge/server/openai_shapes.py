"""Engine outputs shaped as OpenAI's responses and stream chunks (chat and text completions),
with the output guardrails applied, and Server-Sent Events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from agentforge.engine import RequestOutput

from .guards import Guardrails, StreamGuard
from .schemas import ChatCompletionRequest, CompletionRequest


def sse(chunks, headers: dict) -> StreamingResponse:
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


def guarded(text: str, finish_reason: str | None, rails: Guardrails) -> tuple[str, str | None]:
    """An answer after the output guardrails, and its finish reason ("content_filter" if withheld)."""
    if not rails.active:
        return text, finish_reason
    refusal = rails.check_output(text)
    if refusal is not None:
        return refusal, "content_filter"
    limited = rails.limit(rails.redact(text))
    return limited, "length" if len(limited) < len(rails.redact(text)) else finish_reason


def chat_response(out: RequestOutput, rid: str, model: str, tokenizer, body: ChatCompletionRequest,
                   rails: Guardrails) -> dict:
    choices = []
    for c in out.outputs:
        text, finish = guarded(c.text, _finish_reason(c), rails)
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


def chat_chunks(stream, rid: str, model: str, tokenizer, body: ChatCompletionRequest, include_usage: bool,
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


def completion_response(out: RequestOutput, rid: str, model: str, tokenizer, body: CompletionRequest,
                         rails: Guardrails) -> dict:
    choices = []
    for c in out.outputs:
        answer, finish = guarded(c.text, _finish_reason(c), rails)
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


def completion_chunks(stream, rid: str, model: str, body: CompletionRequest, include_usage: bool,
                       rails: Guardrails) -> AsyncIterator[dict]:
    base = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model}
    guard = StreamGuard(rails)

    def chunks_of(out: RequestOutput):
        for c in out.outputs:
            text, finish = guard.apply(c.index, c.delta, _finish_reason(c), final=c.finished)
            if text or finish:
                yield {**base, "choices": [{"index": c.index, "text": text, "finish_reason": finish, "logprobs": None}]}

    return _stream(stream, chunks_of, base, include_usage)
