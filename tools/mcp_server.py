"""Serving tools over MCP (official `mcp` SDK, low-level server): any `Tool`s, compiled graphs as
tools, resources (static and URI templates, text or binary, with subscriptions), prompts and
completions, over stdio or streamable HTTP (optionally behind a bearer token).

The same server speaks the stateless 2026-07-28 protocol and the 2025-11-25 handshake era. What a
tool can do while it runs — progress, logs, asking the client — is in `mcp_context`.
"""

from __future__ import annotations

import base64
import hmac
import importlib.metadata
import json
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import mcp.types as types
from mcp.server.caching import CacheHint
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from .mcp_content import CONTENT_BLOCKS, Prompt, Resource, ResourceTemplate, call_maybe_async, prompt_messages
from .mcp_context import (
    LOG_LEVEL_KEY,
    Elicit,
    ListRoots,
    Sample,
    ask,
    client_connection,
    client_supports,
    is_stateless,
    log,
    report_progress,
    serve_request,
)
from .tool import Tool, _as_text, as_tool

__all__ = ["BearerAuth", "Elicit", "ListRoots", "MCPToolServer", "Prompt", "Resource", "ResourceTemplate", "Sample",
           "ask", "client_supports", "graph_tool", "log", "report_progress"]

INVALID_PARAMS = -32602
RESOURCE_NOT_FOUND = -32002
MAX_COMPLETIONS = 100
class _Server(Server):
    """The SDK's low-level server, advertising the list changes MCPToolServer sends (2025-11-25)."""

    def create_initialization_options(self, notification_options=None, *args, **kwargs):
        changes = notification_options or NotificationOptions(prompts_changed=True, tools_changed=True)
        return super().create_initialization_options(changes, *args, **kwargs)


def graph_tool(graph, name: str, description: str = "", *, timeout: float | None = 600.0) -> Tool:
    """A compiled graph as a tool: its input schema is the tool's, its final state the result;
    every finished step is reported as MCP progress."""
    schema = _input_schema(graph.spec.input_schema)

    async def run(**arguments):
        final, steps = None, 0
        # the caller's trace context (SEP-414 `_meta`, made current by the SDK's server span) goes with
        # the run, where a traced graph continues the caller's trace
        config = {"metadata": _current_trace_context()}
        async for mode, chunk in graph.astream(arguments, config, stream_mode=["updates", "values"]):
            if mode == "updates":
                steps += 1
                report_progress(steps, None, f"finished {', '.join(chunk)}")
            else:
                final = chunk
        return final

    run.__name__ = name
    return Tool(run, name=name, description=description or f"Run the {name} graph.", parameters=schema,
                timeout=timeout)


def _current_trace_context() -> dict[str, str]:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


class MCPToolServer:
    """An MCP server for `Tool`s (and functions, and graphs via `graph_tool`), resources, resource
    templates and prompts.

    >>> server = MCPToolServer("calculator", [calculate])
    >>> server.run()                       # stdio
    >>> server.run("http", port=8765, token="s3cret")

    A tool returns text, data (sent as JSON text and as structured content) or MCP content
    blocks (`types.ImageContent`, ...). List results carry a cache hint of `list_ttl` seconds.
    `state_keys` seal the 2026-07-28 `requestState` (the first key seals, all unseal); without
    them a random per-process key does, which is right unless several workers serve one URL.
    """

    def __init__(
        self,
        name: str,
        tools: Sequence[Tool | Callable] = (),
        *,
        resources: Sequence[Resource | ResourceTemplate] = (),
        prompts: Sequence[Prompt] = (),
        instructions: str | None = None,
        version: str | None = None,
        list_ttl: float = 60.0,
        state_keys: Sequence[str | bytes] | None = None,
    ) -> None:
        self.tools = {t.name: t for t in (as_tool(x) for x in tools)}
        self.resources = {r.uri: r for r in resources if isinstance(r, Resource)}
        self.templates = {r.uri_template: r for r in resources if isinstance(r, ResourceTemplate)}
        self.prompts = {p.name: p for p in prompts}
        if (len(self.tools) != len(tools) or len(self.resources) + len(self.templates) != len(resources)
                or len(self.prompts) != len(prompts)):
            raise ValueError("tool names, resource URIs and templates and prompt names must be unique")
        if list_ttl < 0:
            raise ValueError(f"list_ttl must be >= 0 seconds, got {list_ttl!r}")
        self.bus = InMemorySubscriptionBus()
        self._subscribers: dict[str, weakref.WeakSet] = {}  # resource URI -> 2025-11-25 connections
        self._listers = {"tools": weakref.WeakSet(), "prompts": weakref.WeakSet()}  # told when their list changes
        handlers: dict[str, Any] = {
            "on_list_tools": self._list_tools, "on_call_tool": self._call_tool,
            "on_list_prompts": self._list_prompts, "on_get_prompt": self._get_prompt,
            "on_list_resources": self._list_resources, "on_read_resource": self._read_resource,
            "on_list_resource_templates": self._list_templates,
            "on_subscribe_resource": self._subscribe, "on_unsubscribe_resource": self._unsubscribe,
            "on_completion": self._complete, "on_set_logging_level": self._set_logging_level,
            "on_subscriptions_listen": ListenHandler(self.bus)}
        listed = CacheHint(ttl_ms=round(list_ttl * 1000), scope="public")
        hints = {m: listed for m in ("tools/list", "prompts/list", "resources/list", "resources/templates/list")}
        with warnings.catch_warnings():  # logging is deprecated in 2026-07-28, still part of 2025-11-25
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server = _Server(name, version=version or _package_version(), instructions=instructions,
                                 cache_hints=hints | {"resources/read": CacheHint(ttl_ms=0)}, **handlers)
        security = RequestStateSecurity(keys=list(state_keys)) if state_keys else RequestStateSecurity.ephemeral()
        self.server.middleware.append(RequestStateBoundary(security, default_audience=name))

    # --- tools --------------------------------------------------------------------------

    async def add_tool(self, tool: Tool | Callable) -> None:
        """Serve one more tool (replacing one of the same name); clients are told the list changed."""
        tool = as_tool(tool)
        self.tools[tool.name] = tool
        await self._list_changed("tools")

    async def remove_tool(self, name: str) -> None:
        """Stop serving tool `name`; clients are told the list changed."""
        if self.tools.pop(name, None) is None:
            raise ValueError(f"no tool named {name!r}")
        await self._list_changed("tools")

    async def _list_changed(self, kind: str) -> None:
        if kind == "tools":
            await _tell(self._listers["tools"], lambda c: c.send_tool_list_changed(), ToolsListChanged(), self.bus)
        else:
            await _tell(self._listers["prompts"], lambda c: c.send_prompt_list_changed(), PromptsListChanged(), self.bus)

    async def _list_tools(self, ctx, params) -> types.ListToolsResult:
        self._listers["tools"].add(client_connection(ctx))
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters) for t in self.tools.values()
        ])

    async def _call_tool(self, ctx, params: types.CallToolRequestParams):
        tool = self.tools.get(params.name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        return await serve_request(ctx, params, lambda: self._run_tool(tool, params.arguments or {}))

    @staticmethod
    async def _run_tool(tool: Tool, arguments: dict) -> types.CallToolResult:
        result = await tool.ainvoke(arguments)
        blocks = result.data if isinstance(result.data, list) else [result.data]
        if not result.is_error and blocks and all(isinstance(b, CONTENT_BLOCKS) for b in blocks):
            return types.CallToolResult(content=blocks)
        structured = result.data if isinstance(result.data, dict) and not result.is_error else None
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.content)],
                                    structured_content=_jsonable(structured), is_error=result.is_error)

    async def _set_logging_level(self, ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        client_connection(ctx).state[LOG_LEVEL_KEY] = params.level
        return types.EmptyResult()

    # --- resources ----------------------------------------------------------------------

    async def _list_resources(self, ctx, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
            for r in self.resources.values()
        ])

    async def _list_templates(self, ctx, params) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=t.uri_template, name=t.name, description=t.description,
                                   mime_type=t.mime_type)
            for t in self.templates.values()
        ])

    async def _read_resource(self, ctx, params: types.ReadResourceRequestParams):
        uri = str(params.uri)
        resource = self.resources.get(uri)
        if resource is not None:
            read, variables, mime_type = resource.read, {}, resource.mime_type
        else:
            found = next(((t, v) for t in self.templates.values() if (v := t.match(uri)) is not None), None)
            if found is None:
                code = INVALID_PARAMS if is_stateless(ctx) else RESOURCE_NOT_FOUND  # SEP-2164 moved it
                raise MCPError(code, f"Resource not found: {uri}", data={"uri": uri})
            template, variables = found
            read, mime_type = template.read, template.mime_type

        async def run() -> types.ReadResourceResult:
            content = await call_maybe_async(read, **variables)
            if isinstance(content, (bytes, bytearray)):
                part = types.BlobResourceContents(uri=uri, mime_type=mime_type, blob=base64.b64encode(content).decode())
            else:
                part = types.TextResourceContents(uri=uri, mime_type=mime_type, text=_as_text(content))
            return types.ReadResourceResult(contents=[part])

        return await serve_request(ctx, params, run)

    async def _subscribe(self, ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        self._subscribers.setdefault(str(params.uri), weakref.WeakSet()).add(client_connection(ctx))
        return types.EmptyResult()

    async def _unsubscribe(self, ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self._subscribers.get(str(params.uri), weakref.WeakSet()).discard(client_connection(ctx))
        return types.EmptyResult()

    async def notify_resource_updated(self, uri: str) -> None:
        """Tell the clients that subscribed to `uri` (2025-11-25) or listen for it (2026-07-28)
        that it changed."""
        await _tell(self._subscribers.get(uri, weakref.WeakSet()), lambda c: c.send_resource_updated(uri),
                    ResourceUpdated(uri=uri), self.bus)

    # --- prompts and completions --------------------------------------------------------

    async def add_prompt(self, prompt: Prompt) -> None:
        """Serve one more prompt (replacing one of the same name); clients are told the list changed."""
        self.prompts[prompt.name] = prompt
        await self._list_changed("prompts")

    async def remove_prompt(self, name: str) -> None:
        """Stop serving prompt `name`; clients are told the list changed."""
        if self.prompts.pop(name, None) is None:
            raise ValueError(f"no prompt named {name!r}")
        await self._list_changed("prompts")

    async def _list_prompts(self, ctx, params) -> types.ListPromptsResult:
        self._listers["prompts"].add(client_connection(ctx))
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=p.name, description=p.description, arguments=[
                types.PromptArgument(name=n, description=d, required=r) for n, d, r in p.arguments])
            for p in self.prompts.values()
        ])

    async def _get_prompt(self, ctx, params: types.GetPromptRequestParams):
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        arguments = dict(params.arguments or {})
        missing = [n for n, _, required in prompt.arguments if required and n not in arguments]
        if missing:
            raise MCPError(INVALID_PARAMS, f"Missing required arguments for prompt {prompt.name!r}: {', '.join(missing)}")
        unknown = set(arguments) - {n for n, _, _ in prompt.arguments}
        if unknown:
            raise MCPError(INVALID_PARAMS, f"Unknown arguments for prompt {prompt.name!r}: {', '.join(sorted(unknown))}")

        async def run() -> types.GetPromptResult:
            messages = prompt_messages(await call_maybe_async(prompt.render, **arguments))
            return types.GetPromptResult(description=prompt.description, messages=messages)

        return await serve_request(ctx, params, run)

    async def _complete(self, ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref = params.ref
        owner = self.prompts.get(ref.name) if ref.type == "ref/prompt" else self.templates.get(ref.uri)
        if owner is None:
            raise MCPError(INVALID_PARAMS, f"Nothing to complete for {ref.model_dump(exclude_none=True)}")
        values = list(owner.complete(params.argument.name, params.argument.value)) if owner.complete else []
        return types.CompleteResult(completion=types.Completion(
            values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS))

    # --- transports ---------------------------------------------------------------------

    async def run_stdio(self) -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def http_app(self, *, token: str | None = None, path: str = "/mcp", host: str = "127.0.0.1"):
        """The streamable-HTTP ASGI app; with `token`, every request needs `Authorization: Bearer
        <token>`. Served on a loopback `host`, requests naming another Host or Origin are refused
        (DNS rebinding protection)."""
        app = self.server.streamable_http_app(streamable_http_path=path, host=host)
        return app if token is None else BearerAuth(app, token)

    def run(self, transport: str = "stdio", *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
            path: str = "/mcp") -> None:
        """Serve until stopped: "stdio", or "http" (streamable HTTP at `path`)."""
        if transport == "stdio":
            import anyio

            anyio.run(self.run_stdio)
        elif transport == "http":
            import uvicorn

            uvicorn.run(self.http_app(token=token, path=path, host=host), host=host, port=port, log_level="warning")
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


async def _tell(connections: weakref.WeakSet, send: Callable, event: Any, bus: InMemorySubscriptionBus) -> None:
    """Send a change notification to each 2025-11-25 connection that wants it (dropping those that
    went away: they are not the others' problem), and publish the event to 2026-07-28 listeners."""
    for connection in list(connections):
        try:
            await send(connection)
        except Exception:
            connections.discard(connection)
    await bus.publish(event)


def _package_version() -> str:
    """The installed agentforge distribution's version (the tools layer never imports the app)."""
    try:
        return importlib.metadata.version("agentforge")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _input_schema(schema: type) -> dict:
    """JSON schema of a graph's input (TypedDict — typing's or typing_extensions' —, dataclass or pydantic)."""
    import dataclasses
    import typing

    from pydantic import BaseModel, TypeAdapter, create_model

    from agentforge.engine.tool_schema import model_parameters

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
