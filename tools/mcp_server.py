"""Serving tools over MCP (official `mcp` SDK, low-level server): any `Tool`s, compiled graphs as
tools, resources and prompts, over stdio or streamable HTTP (optionally behind a bearer token).

The same server speaks the stateless 2026-07-28 protocol and the 2025-11-25 handshake era.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from .tool import Tool, _as_text, as_tool

INVALID_PARAMS = -32602


@dataclass(slots=True)
class Resource:
    """A readable document: `read()` returns its text (called on every read)."""

    uri: str
    name: str
    read: Callable[[], str]
    description: str = ""
    mime_type: str = "text/plain"


@dataclass(slots=True)
class Prompt:
    """A prompt template: `render(**arguments)` returns the user message text."""

    name: str
    render: Callable[..., str]
    description: str = ""
    arguments: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, description, required)


@dataclass(slots=True)
class _Progress:
    loop: asyncio.AbstractEventLoop
    ctx: Any


_progress: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar("agentforge_mcp_progress", default=None)


def report_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    """Inside a tool served over MCP: send a progress notification to the caller (if it asked for
    them). Works from sync tools (worker threads) and async ones; a no-op anywhere else."""
    current = _progress.get()
    if current is None:
        return
    coro = current.ctx.session.report_progress(progress, total, message)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is current.loop:
        running.create_task(coro)
    else:
        asyncio.run_coroutine_threadsafe(coro, current.loop).result(timeout=10)


def graph_tool(graph, name: str, description: str = "", *, timeout: float | None = 600.0) -> Tool:
    """A compiled graph as a tool: its input schema is the tool's, its final state the result;
    every finished step is reported as MCP progress."""
    schema = _input_schema(graph.spec.input_schema)

    async def run(**arguments):
        final, steps = None, 0
        async for mode, chunk in graph.astream(arguments, stream_mode=["updates", "values"]):
            if mode == "updates":
                steps += 1
                report_progress(steps, None, f"finished {', '.join(chunk)}")
            else:
                final = chunk
        return final

    run.__name__ = name
    return Tool(run, name=name, description=description or f"Run the {name} graph.", parameters=schema,
                timeout=timeout)


class MCPToolServer:
    """An MCP server for `Tool`s (and functions, and graphs via `graph_tool`), resources and prompts.

    >>> server = MCPToolServer("calculator", [calculate])
    >>> server.run()                       # stdio
    >>> server.run("http", port=8765, token="s3cret")
    """

    def __init__(
        self,
        name: str,
        tools: Sequence[Tool | Callable] = (),
        *,
        resources: Sequence[Resource] = (),
        prompts: Sequence[Prompt] = (),
        instructions: str | None = None,
        version: str | None = None,
    ) -> None:
        from agentforge import __version__

        self.tools = {t.name: t for t in (as_tool(x) for x in tools)}
        self.resources = {r.uri: r for r in resources}
        self.prompts = {p.name: p for p in prompts}
        if len(self.tools) != len(tools) or len(self.resources) != len(resources) or len(self.prompts) != len(prompts):
            raise ValueError("tool names, resource URIs and prompt names must be unique")
        handlers: dict[str, Any] = {"on_list_tools": self._list_tools, "on_call_tool": self._call_tool}
        if self.resources:
            handlers |= {"on_list_resources": self._list_resources, "on_read_resource": self._read_resource}
        if self.prompts:
            handlers |= {"on_list_prompts": self._list_prompts, "on_get_prompt": self._get_prompt}
        self.server = Server(name, version=version or __version__, instructions=instructions, **handlers)

    # --- handlers -----------------------------------------------------------------------

    async def _list_tools(self, ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters) for t in self.tools.values()
        ])

    async def _call_tool(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        token = _progress.set(_Progress(asyncio.get_running_loop(), ctx))
        try:
            result = await tool.ainvoke(params.arguments or {})
        finally:
            _progress.reset(token)
        structured = result.data if isinstance(result.data, dict) and not result.is_error else None
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.content)],
                                    structured_content=_jsonable(structured), is_error=result.is_error)

    async def _list_resources(self, ctx, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
            for r in self.resources.values()
        ])

    async def _read_resource(self, ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        resource = self.resources.get(str(params.uri))
        if resource is None:
            raise MCPError(-32002, f"Resource not found: {params.uri}")
        text = await asyncio.to_thread(resource.read)
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=resource.uri, mime_type=resource.mime_type, text=text)])

    async def _list_prompts(self, ctx, params) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=p.name, description=p.description, arguments=[
                types.PromptArgument(name=n, description=d, required=r) for n, d, r in p.arguments])
            for p in self.prompts.values()
        ])

    async def _get_prompt(self, ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        arguments = dict(params.arguments or {})
        missing = [n for n, _, required in prompt.arguments if required and n not in arguments]
        if missing:
            raise MCPError(INVALID_PARAMS, f"Missing required arguments for prompt {prompt.name!r}: {', '.join(missing)}")
        text = prompt.render(**arguments)
        return types.GetPromptResult(description=prompt.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])

    # --- transports ---------------------------------------------------------------------

    async def run_stdio(self) -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def http_app(self, *, token: str | None = None, path: str = "/mcp"):
        """The streamable-HTTP ASGI app; with `token`, every request needs `Authorization: Bearer <token>`."""
        app = self.server.streamable_http_app(streamable_http_path=path)
        return app if token is None else BearerAuth(app, token)

    def run(self, transport: str = "stdio", *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
            path: str = "/mcp") -> None:
        """Serve until stopped: "stdio", or "http" (streamable HTTP at `path`)."""
        if transport == "stdio":
            import anyio

            anyio.run(self.run_stdio)
        elif transport == "http":
            import uvicorn

            uvicorn.run(self.http_app(token=token, path=path), host=host, port=port, log_level="warning")
        else:
            raise ValueError(f"unknown transport {transport!r}; use 'stdio' or 'http'")


class BearerAuth:
    """ASGI middleware: refuse HTTP requests without the right bearer token (401, JSON body)."""

    def __init__(self, app, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": {"code": 401, "message": "missing or invalid bearer token"}}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _input_schema(schema: type) -> dict:
    """JSON schema of a graph's input (TypedDict — typing's or typing_extensions' —, dataclass or pydantic)."""
    import dataclasses
    import typing

    from pydantic import BaseModel, TypeAdapter, create_model

    from agentforge.engine.tool_format import model_parameters

    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return model_parameters(schema)
    if dataclasses.is_dataclass(schema):
        parameters = TypeAdapter(schema).json_schema()
        parameters.pop("title", None)
        return parameters
    hints = typing.get_type_hints(schema)
    required = getattr(schema, "__required_keys__", set(hints))
    fields = {k: (hint, ... if k in required else None) for k, hint in hints.items()}
    return model_parameters(create_model(schema.__name__, **fields))


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(_as_text(value))
