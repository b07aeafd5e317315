"""`OpenAIChatModel`: the `ChatModel` over any OpenAI-compatible endpoint, through the `openai` client
(vLLM, SGLang, TGI, llama.cpp's server, another `agentforge serve`, hosted providers)."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator

import openai

from agentforge.engine.protocol import ChatMessage, ToolCall, ToolCallDelta, ToolCallFunction

from .model import ChatChunk, ChatModel, new_message_id, response_format_spec


class OpenAIChatModel(ChatModel):
    """Chat with a model behind an OpenAI-compatible `/v1/chat/completions`.

    `native_tools=False` is for endpoints without function calling: agents then use the text
    ReAct protocol (Thought / Action / Observation) instead of the API's `tools`.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 512, top_p: float | None = None,
                 seed: int | None = None, stop: list[str] | None = None, timeout: float = 120.0,
                 max_retries: int = 2, native_tools: bool = True) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model must be the endpoint's model name")
        self.model = model
        self.client_options = {"base_url": base_url, "timeout": timeout, "max_retries": max_retries,
                               "api_key": api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"}
        self.sampling = {k: v for k, v in {"temperature": temperature, "max_tokens": max_tokens, "top_p": top_p,
                                           "seed": seed, "stop": stop}.items() if v is not None}
        self.native_tools = native_tools
        # one client per event loop: an async HTTP connection pool cannot move between loops
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.model!r}, base_url={self.client_options['base_url']!r})"

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = openai.AsyncOpenAI(**self.client_options)
        return client

    async def _astream(self, messages: list[ChatMessage]) -> AsyncIterator[ChatChunk]:
        body: dict = {"model": self.model, "messages": [_wire(m) for m in messages], "stream": True,
                      "stream_options": {"include_usage": True}, **self.sampling}
        if self.tools and self.native_tools:
            body["tools"] = self._tool_specs()
            body["parallel_tool_calls"] = self.parallel_tool_calls
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            body["response_format"] = response_format_spec(self.response_format)
        message_id, text, calls, usage, finish = new_message_id(), "", {}, None, None
        async with await self._client().chat.completions.create(**body) as stream:
            async for event in stream:
                if event.usage is not None:
                    usage = {"prompt_tokens": event.usage.prompt_tokens,
                             "completion_tokens": event.usage.completion_tokens,
                             "total_tokens": event.usage.total_tokens}
                for choice in event.choices[:1]:
                    finish = choice.finish_reason or finish
                    delta, call_deltas = choice.delta, []
                    for tc in delta.tool_calls or ():
                        call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                        name = tc.function.name if tc.function else None
                        arguments = (tc.function.arguments if tc.function else None) or ""
                        call["id"] = call["id"] or tc.id
                        call["name"] += name or ""
                        call["arguments"] += arguments
                        call_deltas.append(ToolCallDelta(tc.index, tc.id, name, arguments))
                    if delta.content or call_deltas:
                        text += delta.content or ""
                        yield ChatChunk(message_id, delta.content or "", call_deltas)
        tool_calls = [ToolCall(id=c["id"] or f"call_{message_id}_{i}", function=ToolCallFunction(
            name=c["name"], arguments=c["arguments"] or "{}")) for i, c in sorted(calls.items())]
        message = ChatMessage(role="assistant", content=text, tool_calls=tool_calls or None, id=message_id,
                              usage=usage, finish_reason=finish)
        yield ChatChunk(message_id, message=message)


def _wire(message: ChatMessage) -> dict:
    """A message as the OpenAI API takes it: its standard keys only."""
    out: dict = {"role": message.role, "content": message.content}
    if message.name and message.role in ("user", "assistant", "system"):
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out
