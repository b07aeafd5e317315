"""`ScriptedChatModel`: replies from a script, for deterministic tests of agents and graphs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

from agentforge.engine.protocol import ChatMessage, ToolCallDelta

from .model import ChatChunk, ChatModel, new_message_id


class ScriptedChatModel(ChatModel):
    """Answers each call with the next reply of `replies`: a string (text), a dict or `ChatMessage`
    (tool calls as OpenAI dicts or short `{"name", "args", "id"}` dicts), or a function of the
    messages returning one of those. Text streams word by word. Every call's messages and bound
    tools are kept in `calls` (shared by its `bind_tools` copies), so tests can check what the
    model saw.
    """

    def __init__(self, replies: Sequence[str | dict | ChatMessage | Callable], *, native_tools: bool = True) -> None:
        self.replies = list(replies)
        self.calls: list[dict] = []
        self.native_tools = native_tools

    async def _astream(self, messages: list[ChatMessage]) -> AsyncIterator[ChatChunk]:
        index = len(self.calls)
        self.calls.append({"messages": messages, "tools": [t.name for t in self.tools],
                           "tool_choice": self.tool_choice, "response_format": self.response_format})
        if index >= len(self.replies):
            raise RuntimeError(f"ScriptedChatModel has {len(self.replies)} replies; call {index + 1} has none")
        reply = self.replies[index]
        if callable(reply):
            reply = reply(messages)
        message = scripted_message(reply)
        for i, piece in enumerate((message.content or "").split(" ")):
            if piece or i:
                yield ChatChunk(message.id, piece if i == 0 else " " + piece)
        for i, call in enumerate(message.tool_calls or ()):
            yield ChatChunk(message.id, tool_call_deltas=[ToolCallDelta(i, call.id, call.function.name,
                                                                        call.function.arguments)])
        words = len((message.content or "").split())
        yield ChatChunk(message.id, message=message.model_copy(update={
            "usage": {"prompt_tokens": sum(len(str(m.content or "").split()) for m in messages),
                      "completion_tokens": words, "total_tokens": 0}}))


def scripted_message(reply: str | dict | ChatMessage) -> ChatMessage:
    """An assistant message from a script entry (see `ScriptedChatModel`)."""
    if isinstance(reply, str):
        return ChatMessage(role="assistant", content=reply, id=new_message_id())
    if isinstance(reply, ChatMessage):
        return reply if reply.id else reply.model_copy(update={"id": new_message_id()})
    if not isinstance(reply, dict):
        raise TypeError(f"a scripted reply must be a string, a dict or a ChatMessage, got {type(reply).__name__}")
    reply = {"role": "assistant", "content": "", **reply}
    reply["tool_calls"] = [_call(c) for c in reply.get("tool_calls") or ()] or None
    reply.setdefault("id", new_message_id())
    return ChatMessage.model_validate(reply)


def _call(call: dict) -> dict:
    if "function" in call:
        return {"id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}", **call}
    return {"id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
            "function": {"name": call["name"], "arguments": json.dumps(call.get("args", {}))}}
