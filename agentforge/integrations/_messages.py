"""Chat messages between LangChain's classes and ours (OpenAI-style `ChatMessage`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

try:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"agentforge.integrations.langchain needs {exc.name}: pip install 'agentforge[langchain]'") from exc

from agentforge.engine.protocol import ChatMessage


def from_langchain_messages(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """LangChain messages (ours pass through) as ours: roles, text or content parts, tool calls (arguments as JSON
    text), tool results with their call id and status, message ids."""
    out = []
    for m in messages:
        if isinstance(m, ChatMessage):
            out.append(m)
            continue
        if not isinstance(m, BaseMessage):
            raise TypeError(f"expected LangChain messages, got {type(m).__name__}")
        content = m.content if isinstance(m.content, str) else _parts(m.content)
        if isinstance(m, AIMessage):
            calls = [{"id": c["id"] or f"call_{i}", "type": "function",
                      "function": {"name": c["name"], "arguments": json.dumps(c["args"], ensure_ascii=False)}}
                     for i, c in enumerate(m.tool_calls)]
            out.append(ChatMessage(role="assistant", content=content, tool_calls=calls or None, id=m.id))
        elif isinstance(m, ToolMessage):
            out.append(ChatMessage(role="tool", content=content, tool_call_id=m.tool_call_id, name=m.name, id=m.id,
                                   status=m.status))
        elif isinstance(m, SystemMessage):
            out.append(ChatMessage(role="system", content=content, id=m.id))
        elif isinstance(m, HumanMessage):
            out.append(ChatMessage(role="user", content=content, name=m.name, id=m.id))
        else:
            raise TypeError(f"no AgentForge role for a LangChain {type(m).__name__}")
    return out


def to_langchain_messages(messages: Sequence[ChatMessage | dict]) -> list[BaseMessage]:
    """Our messages (or OpenAI-style dicts; LangChain's pass through) as LangChain's."""
    out: list[BaseMessage] = []
    for m in messages:
        if isinstance(m, BaseMessage):
            out.append(m)
            continue
        m = m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)
        content = m.content if m.content is not None else ""
        if m.role == "assistant":
            calls, invalid = [], []
            for c in m.tool_calls or ():
                args = _arguments(c.function.arguments)
                if args is None:
                    invalid.append({"name": c.function.name, "args": c.function.arguments, "id": c.id,
                                    "error": "arguments are not a JSON object", "type": "invalid_tool_call"})
                else:
                    calls.append({"name": c.function.name, "args": args, "id": c.id, "type": "tool_call"})
            out.append(AIMessage(content=content, tool_calls=calls, invalid_tool_calls=invalid, id=m.id))
        elif m.role == "tool":
            out.append(ToolMessage(content=content, tool_call_id=m.tool_call_id or "", name=m.name, id=m.id,
                                   status=getattr(m, "status", None) or "success"))
        elif m.role in ("system", "developer"):
            out.append(SystemMessage(content=content, id=m.id))
        else:
            out.append(HumanMessage(content=content, name=m.name, id=m.id))
    return out


def _parts(blocks: list) -> list[dict]:
    """LangChain content blocks as OpenAI content parts (text and images)."""
    parts = []
    for block in blocks:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        elif block.get("type") == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif block.get("type") == "image_url":
            parts.append({"type": "image_url", "image_url": block["image_url"]})
        elif block.get("type") == "image" and block.get("base64"):
            url = f"data:{block.get('mime_type', 'image/png')};base64,{block['base64']}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif block.get("type") == "image" and block.get("url"):
            parts.append({"type": "image_url", "image_url": {"url": block["url"]}})
        else:
            raise ValueError(f"unsupported content block type {block.get('type')!r}")
    return parts


def _arguments(text: str) -> dict | None:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
