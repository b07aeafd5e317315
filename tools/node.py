"""`ToolNode`: the graph node that runs the tool calls of the last assistant message."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable, Sequence
from typing import Any

from agentforge.engine.protocol import ChatMessage, ToolCall

from .tool import Tool, ToolResult, as_tool

END = "__end__"


class ToolNode:
    """Runs every tool call of the last message (in parallel when there are several) and returns
    one tool message per call, in call order. An unknown tool, bad arguments, an exception or a
    timeout becomes an error message for the model, never an exception in the graph.

    >>> graph.add_node("tools", ToolNode([get_weather, search]))
    """

    def __init__(self, tools: Sequence[Tool | Callable], *, messages_key: str = "messages", name: str = "tools") -> None:
        self.tools = {t.name: t for t in (as_tool(x) for x in tools)}
        if len(self.tools) != len(tools):
            raise ValueError("tool names must be unique")
        self.messages_key = messages_key
        self.name = name

    def __call__(self, state: Any) -> dict:
        calls = self._calls(state)
        if len(calls) <= 1:
            results = [self._run(c) for c in calls]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(calls))) as pool:
                results = list(pool.map(lambda c: contextvars.copy_context().run(self._run, c), calls))
        return {self.messages_key: [r.to_message(c.id, c.function.name) for c, r in zip(calls, results)]}

    async def ainvoke(self, state: Any) -> dict:
        """The same, awaiting async tools concurrently."""
        calls = self._calls(state)
        results = await asyncio.gather(*(self._arun(c) for c in calls))
        return {self.messages_key: [r.to_message(c.id, c.function.name) for c, r in zip(calls, results)]}

    def run_call(self, call: ToolCall) -> ChatMessage:
        """Run one tool call; its tool message (an error message when it failed)."""
        return self._run(call).to_message(call.id, call.function.name)

    def _calls(self, state: Any) -> list:
        messages = state if isinstance(state, list) else (
            state.get(self.messages_key) if isinstance(state, dict) else getattr(state, self.messages_key, None))
        if not messages:
            raise ValueError(f"ToolNode found no messages under {self.messages_key!r}")
        last = ChatMessage.model_validate(messages[-1]) if isinstance(messages[-1], dict) else messages[-1]
        return list(last.tool_calls or [])

    def _unknown(self, name: str) -> ToolResult:
        return ToolResult(f"Error: there is no tool named {name!r}; available: {', '.join(sorted(self.tools))}",
                          is_error=True)

    def _run(self, call) -> ToolResult:
        tool = self.tools.get(call.function.name)
        return tool.invoke(call.function.arguments) if tool else self._unknown(call.function.name)

    async def _arun(self, call) -> ToolResult:
        tool = self.tools.get(call.function.name)
        return await tool.ainvoke(call.function.arguments) if tool else self._unknown(call.function.name)


def tools_condition(state: Any, messages_key: str = "messages") -> str:
    """Router after a model node: "tools" if its last message calls tools, else END."""
    messages = state if isinstance(state, list) else (
        state.get(messages_key) if isinstance(state, dict) else getattr(state, messages_key))
    last = messages[-1] if messages else None
    calls = last.get("tool_calls") if isinstance(last, dict) else getattr(last, "tool_calls", None)
    return "tools" if calls else END
