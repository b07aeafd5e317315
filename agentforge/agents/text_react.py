"""Tool calls in plain text (Thought / Action / Action Input / Observation), for models and
endpoints without function calling: the wrapper turns the text into ordinary `tool_calls`, so the
agent graph is the same in both modes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from agentforge.engine.protocol import ChatMessage, ToolCall, ToolCallFunction
from agentforge.prompts import REACT_PROMPT

from .model import ChatChunk, ChatModel

_ACTION = re.compile(r"Action\s*:\s*(?P<name>[^\n]+?)\s*\n+\s*Action\s*Input\s*:\s*(?P<args>.*)", re.S)
_FINAL = re.compile(r"Final\s*Answer\s*:\s*(?P<answer>.*)", re.S)


class TextReActModel(ChatModel):
    """Wraps `model`: bound tools go into the system prompt (`template`, with `{tools}` and
    `{names}`), tool results come back as "Observation:" turns, and the reply's first Action
    becomes a tool call."""

    native_tools = True  # to the agent: it takes tools and returns tool calls

    def __init__(self, model: ChatModel, template: str = REACT_PROMPT) -> None:
        if "{tools}" not in template:
            raise ValueError("the ReAct template needs a {tools} placeholder")
        self.model, self.template = model, template

    async def _astream(self, messages: list[ChatMessage]) -> AsyncIterator[ChatChunk]:
        text, final = "", None
        async for chunk in self.model._astream(self._transcript(messages)):
            if chunk.message is not None:
                final = chunk.message
            elif chunk.content:
                text += chunk.content
                yield ChatChunk(chunk.id, chunk.content)
        text = final.content if final is not None and isinstance(final.content, str) else text
        content, call = parse_react(text, len([m for m in messages if m.role == "assistant"]))
        message = ChatMessage(role="assistant", content=content, tool_calls=[call] if call else None,
                              id=final.id if final else None, usage=getattr(final, "usage", None))
        yield ChatChunk(message.id or "", message=message)

    def _transcript(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        tools = "\n".join(f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters)}" for t in self.tools)
        system = self.template.format(tools=tools, names=", ".join(t.name for t in self.tools))
        out = [ChatMessage(role="system", content=system)]
        for m in messages:
            if m.role == "system":
                out[0] = ChatMessage(role="system", content=f"{m.content}\n\n{system}")
            elif m.role == "tool":
                out.append(ChatMessage(role="user", content=f"Observation: {m.content}"))
            elif m.role == "assistant" and m.tool_calls:
                steps = "\n".join(f"Action: {c.function.name}\nAction Input: {c.function.arguments}" for c in m.tool_calls)
                out.append(ChatMessage(role="assistant", content=f"{m.content or ''}\n{steps}".strip()))
            else:
                out.append(m)
        return out


def parse_react(text: str, turn: int = 0) -> tuple[str, ToolCall | None]:
    """(text for the user, the first Action as a tool call or None) of a ReAct reply."""
    text = text.split("Observation:")[0]
    action = _ACTION.search(text)
    final = _FINAL.search(text)
    if action and (not final or action.start() < final.start()):
        raw = action["args"].strip()
        try:
            json.loads(raw)
        except json.JSONDecodeError:
            raw = _first_json_object(raw) or raw  # the ToolNode reports arguments that are not JSON
        call = ToolCall(id=f"react_{turn}", function=ToolCallFunction(name=action["name"].strip(), arguments=raw))
        return text[:action.start()].replace("Thought:", "").strip(), call
    if final:
        return final["answer"].strip(), None
    return text.strip(), None


def _first_json_object(text: str) -> str | None:
    start = text.find("{")
    while start != -1:
        try:
            value, end = json.JSONDecoder().raw_decode(text[start:])
            return json.dumps(value)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return None
