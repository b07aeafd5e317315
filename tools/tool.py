"""`Tool` and `@tool`: a function an agent can call, described by a JSON schema derived from its
type hints, pydantic models and docstring. Calling a tool never raises: bad arguments, exceptions
and timeouts come back as an error result the model can read."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from agentforge.engine.errors import InvalidRequestError
from agentforge.engine.protocol import ChatMessage
from agentforge.engine.tool_schema import TOOL_NAME, function_model, model_parameters, own_doc

DEFAULT_TIMEOUT = 60.0
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="agentforge-tool")


@dataclass(slots=True)
class ToolResult:
    """What a call returned: `content` is the text the model reads; `data` the raw return value."""

    content: str
    is_error: bool = False
    data: Any = None

    def to_message(self, tool_call_id: str, name: str) -> ChatMessage:
        """The tool-role chat message answering tool call `tool_call_id`."""
        return ChatMessage(role="tool", tool_call_id=tool_call_id, name=name, content=self.content,
                           status="error" if self.is_error else "success")


class Tool:
    """A callable with a name, a description and a JSON schema of its arguments.

    Built from a typed function (`Tool(fn)` or `@tool`), from a function taking the fields of a
    pydantic model (`args_schema=`), or from a ready JSON schema (`parameters=`, e.g. an MCP tool).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        args_schema: type[BaseModel] | None = None,
        parameters: dict | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        if not callable(func):
            raise InvalidRequestError(f"a tool needs a callable, got {type(func).__name__}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidRequestError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if args_schema is None and parameters is None:  # everything from the function's signature
            derived_name, derived_description, model = function_model(func)
        else:
            derived_name, model = getattr(func, "__name__", None), args_schema
            derived_description = own_doc(args_schema) or inspect.getdoc(func) or ""
        self.func = func
        self.name = name or derived_name
        self.description = description if description is not None else derived_description
        self.args_model: type[BaseModel] | None = model
        self.parameters = parameters if parameters is not None else model_parameters(model)
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))
        if not isinstance(self.name, str) or not TOOL_NAME.match(self.name):
            raise InvalidRequestError(f"invalid tool name {self.name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        if self.parameters.get("type", "object") != "object":
            raise InvalidRequestError(f"tool {self.name!r}: parameters must be a JSON schema of type 'object'")

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    @property
    def spec(self) -> dict:
        """The OpenAI function spec the engine and chat templates take."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def invoke(self, arguments: dict | str | None = None) -> ToolResult:
        """Call the tool and wait for it (at most `timeout` seconds)."""
        try:
            kwargs = self._arguments(arguments)
        except ValueError as exc:
            return ToolResult(str(exc), is_error=True)
        try:
            if self.is_async:
                value = _run_async(self.func(**kwargs), self.timeout)
            elif self.timeout is None:
                value = self.func(**kwargs)
            else:
                future = _POOL.submit(contextvars.copy_context().run, lambda: self.func(**kwargs))
                value = future.result(timeout=self.timeout)
        except (TimeoutError, concurrent.futures.TimeoutError, asyncio.TimeoutError):
            return ToolResult(f"Error: tool {self.name!r} timed out after {self.timeout:g} s", is_error=True)
        except Exception as exc:
            return _error(exc)
        return ToolResult(_as_text(value), data=value)

    async def ainvoke(self, arguments: dict | str | None = None) -> ToolResult:
        """`invoke` for asyncio: async tools are awaited, sync ones run in a worker thread."""
        try:
            kwargs = self._arguments(arguments)
        except ValueError as exc:
            return ToolResult(str(exc), is_error=True)
        try:
            call = self.func(**kwargs) if self.is_async else asyncio.to_thread(self.func, **kwargs)
            value = await asyncio.wait_for(call, self.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return ToolResult(f"Error: tool {self.name!r} timed out after {self.timeout:g} s", is_error=True)
        except Exception as exc:
            return _error(exc)
        return ToolResult(_as_text(value), data=value)

    def _arguments(self, arguments: dict | str | None) -> dict:
        """Parse and validate call arguments; ValueError with a message for the model."""
        if arguments is None or arguments == "":
            arguments = {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ValueError(f"Error: the arguments of {self.name!r} are not valid JSON: {exc}") from exc
        if not isinstance(arguments, dict):
            raise ValueError(f"Error: the arguments of {self.name!r} must be a JSON object, got {type(arguments).__name__}")
        if self.args_model is None:
            try:
                jsonschema.validate(arguments, self.parameters)
            except jsonschema.ValidationError as exc:
                raise ValueError(f"Error: invalid arguments for {self.name!r}: {exc.message}") from exc
            return arguments
        try:
            validated = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"Error: invalid arguments for {self.name!r}: {problems}") from exc
        return {field: getattr(validated, field) for field in type(validated).model_fields}


def tool(
    func: Callable | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
):
    """Turn a function into a `Tool`: `@tool` or `@tool(name=..., timeout=...)`.

    >>> @tool
    ... def get_weather(city: str, unit: str = "celsius") -> str:
    ...     '''Get the current weather in a city.
    ...
    ...     Args:
    ...         city: The city's name.
    ...     '''
    """

    def wrap(f: Callable) -> Tool:
        return Tool(f, name=name, description=description, args_schema=args_schema, timeout=timeout)

    return wrap(func) if func is not None else wrap


def as_tool(obj: Tool | Callable) -> Tool:
    """A Tool as it is; a function wrapped in one."""
    return obj if isinstance(obj, Tool) else Tool(obj)


def _run_async(coro, timeout: float | None):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    # called from inside an event loop (a sync node in an async graph): run on a fresh loop in a worker
    return _POOL.submit(contextvars.copy_context().run, asyncio.run, bounded()).result()


def _error(exc: Exception) -> ToolResult:
    return ToolResult(f"Error: {type(exc).__name__}: {exc}", is_error=True)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=_default)
    except (TypeError, ValueError):
        return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)
