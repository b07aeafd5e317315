"""Graph values as JSON, with messages in the shape LangGraph's clients read (LangChain message
dicts: `type` "human" / "ai" / "tool" / "system", `tool_calls` with parsed `args`), and LangChain
message dicts in run input turned into chat messages."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel

from agentforge.agents import ChatChunk
from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import Interrupt

_TYPES = {"user": "human", "assistant": "ai", "tool": "tool", "system": "system", "developer": "system"}
_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def jsonable(value: Any) -> Any:
    """`value` as JSON-ready data."""
    if isinstance(value, ChatMessage):
        return _message(value)
    if isinstance(value, ChatChunk):
        return _chunk(value)
    if isinstance(value, Interrupt):
        return {"value": jsonable(value.value), "id": value.id}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def from_lc_input(value: dict | None) -> dict | None:
    """Run input with its `messages` as chat messages (LangChain dicts and role dicts both work)."""
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
        return value
    return {**value, "messages": [_from_lc(m) for m in value["messages"]]}


def _from_lc(message: Any) -> Any:
    if not isinstance(message, dict) or "role" in message or message.get("type") not in _ROLES:
        return message
    out = {"role": _ROLES[message["type"]], "content": message.get("content", "")}
    for key in ("id", "name", "tool_call_id"):
        if message.get(key):
            out[key] = message[key]
    if message.get("tool_calls"):
        out["tool_calls"] = [{"id": c.get("id"), "type": "function", "function": {
            "name": c["name"], "arguments": json.dumps(c.get("args", {}))}} for c in message["tool_calls"]]
    return out


def _message(m: ChatMessage) -> dict:
    out = {"type": _TYPES[m.role], "content": m.content if m.content is not None else "", "id": m.id,
           "name": m.name, "additional_kwargs": {}, "response_metadata": {}}
    if m.role == "assistant":
        out["tool_calls"] = [{"name": c.function.name, "args": _args(c.function.arguments), "id": c.id,
                              "type": "tool_call"} for c in m.tool_calls or ()]
        out["invalid_tool_calls"] = []
        usage = getattr(m, "usage", None)
        out["usage_metadata"] = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
                                 "total_tokens": usage["total_tokens"]} if usage else None
        if getattr(m, "finish_reason", None):
            out["response_metadata"]["finish_reason"] = m.finish_reason
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id
        out["status"] = getattr(m, "status", None) or "success"
    return out


def _chunk(chunk: ChatChunk) -> dict:
    out = {"type": "AIMessageChunk", "content": chunk.content, "id": chunk.id, "additional_kwargs": {},
           "response_metadata": {}, "tool_call_chunks": [
               {"name": d.name, "args": d.arguments, "id": d.id, "index": d.index, "type": "tool_call_chunk"}
               for d in chunk.tool_call_deltas]}
    if chunk.message is not None:
        full = _message(chunk.message)
        out.update(chunk_position="last", usage_metadata=full.get("usage_metadata"),
                   response_metadata=full["response_metadata"])
    return out


def _args(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments
