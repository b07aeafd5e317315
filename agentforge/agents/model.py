"""`ChatModel`: messages in, one assistant message (text and/or tool calls) out — sync, async and
streamed, with tools bound and structured output, over whichever backend implements `_astream`.

Inside a graph node every streamed chunk also goes to the run's "messages" stream, so
`graph.stream(..., stream_mode="messages")` yields the tokens as they are generated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import json
import queue
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import jsonschema
from pydantic import BaseModel

from agentforge.engine.errors import InvalidRequestError
from agentforge.engine.protocol import ChatMessage, ToolCallDelta
from agentforge.graphs import get_message_writer
from agentforge.tools import Tool, as_tool

Messages = Sequence[ChatMessage | dict | str]
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="agentforge-model")


@dataclass(slots=True)
class ChatChunk:
    """A streamed piece of a reply. The last chunk of a reply carries the whole `message`."""

    id: str
    content: str = ""
    tool_call_deltas: list[ToolCallDelta] = field(default_factory=list)
    message: ChatMessage | None = None


class ChatModel:
    """The interface every agent talks to. Backends implement `_astream`; the rest is shared.

    >>> model = EngineChatModel("smollm2-135m").bind_tools([get_weather])
    >>> reply = model.invoke([{"role": "user", "content": "Weather in Paris?"}])
    >>> reply.tool_calls, reply.usage
    """

    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool = True
    response_format: type[BaseModel] | dict | None = None
    # whether the backend takes tool specs natively (else agents use a text ReAct protocol)
    native_tools: bool = True

    def bind_tools(self, tools: Sequence[Tool | Callable], *, tool_choice: str | dict | None = None,
                   parallel_tool_calls: bool = True) -> ChatModel:
        """A copy of this model that offers `tools` (Tools or typed functions) on every call."""
        if tool_choice is not None and not (tool_choice in ("auto", "required", "none") or isinstance(tool_choice, dict)):
            raise InvalidRequestError(f"tool_choice must be 'auto', 'required', 'none' or a function dict, got {tool_choice!r}")
        bound = copy.copy(self)
        bound.tools = tuple(as_tool(t) for t in tools)
        bound.tool_choice, bound.parallel_tool_calls = tool_choice, parallel_tool_calls
        return bound

    def with_structured_output(self, schema: type[BaseModel] | dict) -> StructuredModel:
        """A model whose `invoke` returns an instance of `schema` (a pydantic class) or a dict (a
        JSON schema), decoded under that schema where the backend can constrain its output."""
        if not (isinstance(schema, dict) or (isinstance(schema, type) and issubclass(schema, BaseModel))):
            raise InvalidRequestError(f"schema must be a pydantic model class or a JSON schema dict, got {schema!r}")
        bound = copy.copy(self)
        bound.tools, bound.tool_choice, bound.response_format = (), None, schema
        return StructuredModel(bound)

    # --- calling --------------------------------------------------------------------------

    async def astream(self, messages: Messages) -> AsyncIterator[ChatChunk]:
        """Yield the reply as it is generated; the last chunk carries the complete message."""
        writer = get_message_writer()
        async for chunk in self._astream(to_messages(messages)):
            writer(chunk)
            yield chunk

    async def ainvoke(self, messages: Messages) -> ChatMessage:
        """The whole reply: an assistant message with `tool_calls` and `usage`."""
        message = None
        async for chunk in self.astream(messages):
            message = chunk.message or message
        if message is None:
            raise RuntimeError(f"{type(self).__name__} ended its reply without a message")
        return message

    def invoke(self, messages: Messages) -> ChatMessage:
        """`ainvoke` for synchronous code (it runs the coroutine on its own event loop)."""
        return run_sync(self.ainvoke(messages))

    def stream(self, messages: Messages) -> Iterator[ChatChunk]:
        """`astream` for synchronous code: chunks arrive as they are generated."""
        done = object()
        out: queue.SimpleQueue = queue.SimpleQueue()

        async def pump() -> None:
            try:
                async for chunk in self.astream(messages):
                    out.put(chunk)
            except BaseException as exc:
                out.put(exc)
            finally:
                out.put(done)

        future = _POOL.submit(contextvars.copy_context().run, asyncio.run, pump())
        while (item := out.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
        future.result()

    async def _astream(self, messages: list[ChatMessage]) -> AsyncIterator[ChatChunk]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _tool_specs(self) -> list[dict] | None:
        return [t.spec for t in self.tools] or None


class StructuredModel:
    """A chat model bound to an output schema: `invoke` returns the parsed object."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.schema = model.response_format

    async def ainvoke(self, messages: Messages) -> BaseModel | dict:
        reply = await self.model.ainvoke(messages)
        return parse_structured(self.schema, reply)

    def invoke(self, messages: Messages) -> BaseModel | dict:
        return run_sync(self.ainvoke(messages))


def parse_structured(schema: type[BaseModel] | dict, reply: ChatMessage) -> BaseModel | dict:
    """The reply's JSON as an instance of `schema` (or a dict); ValueError says what was wrong."""
    text = reply.content if isinstance(reply.content, str) else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the model's answer is not JSON: {text[:200]!r}") from exc
    if isinstance(schema, type):
        return schema.model_validate(value)
    jsonschema.validate(value, schema)
    return value


def response_format_spec(schema: type[BaseModel] | dict) -> dict:
    """OpenAI's `response_format` for a pydantic class or a JSON schema."""
    if isinstance(schema, type):
        return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}
    return {"type": "json_schema", "json_schema": {"name": schema.get("title", "response"), "schema": schema}}


def run_sync(coro):
    """Run a coroutine to completion from synchronous code, inside or outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return _POOL.submit(contextvars.copy_context().run, asyncio.run, coro).result()


def new_message_id() -> str:
    return f"msg-{uuid.uuid4().hex[:24]}"


def to_messages(messages: Messages) -> list[ChatMessage]:
    """Messages (ChatMessage, dicts, or strings as user turns) as a list of ChatMessage."""
    if isinstance(messages, (str, dict, ChatMessage)):
        messages = [messages]
    out = []
    for m in messages:
        if isinstance(m, str):
            m = ChatMessage(role="user", content=m)
        elif isinstance(m, dict):
            m = ChatMessage.model_validate(m)
        elif not isinstance(m, ChatMessage):
            raise InvalidRequestError(f"a message must be a ChatMessage, a dict or a string, got {type(m).__name__}")
        out.append(m)
    if not out:
        raise InvalidRequestError("a chat model needs at least one message")
    return out


def as_chat_model(model: str | ChatModel) -> ChatModel:
    """A `ChatModel` as it is; a model name (alias or path) as the embedded engine's model."""
    if isinstance(model, ChatModel):
        return model
    if isinstance(model, str) and model:
        from .engine_model import EngineChatModel  # torch loads here, on first use

        return EngineChatModel(model)
    raise TypeError(f"model must be a ChatModel or a model name, got {model!r}")
