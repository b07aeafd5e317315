"""`MCPClient`: one object for several MCP servers at once (official `mcp` SDK `Client`).

Servers are reached over stdio (a command), streamable HTTP (a URL) or legacy SSE. The client runs
its own event loop in a background thread, so sync code (graph nodes) and async code share the
same connections. Each server's connection is owned by one task there, which reconnects after a
failure; a server that crashes, hangs past the timeout or answers with an error gives the caller a
tool error, never an exception or a stuck agent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import CONNECTION_CLOSED

from .mcp_content import call_maybe_async
from .mcp_meta import request_meta
from .tool import Tool, ToolResult

_SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")


@dataclass(slots=True)
class StdioServer:
    """Launch `command args...` and speak MCP over its stdin/stdout."""

    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None


@dataclass(slots=True)
class HttpServer:
    """An MCP server at `url`: streamable HTTP (default) or the legacy HTTP+SSE transport.
    `auth` is an `httpx2.Auth`, e.g. the SDK's `mcp.client.auth.OAuthClientProvider` for servers
    behind OAuth."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    transport: str = "streamable-http"  # or "sse"
    auth: Any = None


ServerSpec = StdioServer | HttpServer | str


class MCPToolError(RuntimeError):
    """An MCP tool answered with an error, or its server could not be reached."""


class _Connection:
    """One server's session, owned by one task on the client's loop (the SDK's contexts must be
    entered and left by the same task); requests may come from any task on that loop."""

    def __init__(self, name: str, spec: ServerSpec, timeout: float, options: dict[str, Any]) -> None:
        self.name, self.spec, self.timeout, self.options = name, spec, timeout, options
        self.client: Client | None = None
        self.ready: asyncio.Future | None = None
        self.stop: asyncio.Event | None = None
        self.owner: asyncio.Task | None = None

    def _transport(self):
        spec = self.spec
        if isinstance(spec, str):
            return spec
        if isinstance(spec, StdioServer):
            return StdioServerParameters(command=spec.command, args=list(spec.args), env=spec.env, cwd=spec.cwd)
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, headers=spec.headers or None, timeout=self.timeout, auth=spec.auth)
        if spec.headers or spec.auth is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers=spec.headers, auth=spec.auth, timeout=httpx2.Timeout(self.timeout, read=300))
            return streamable_http_client(spec.url, http_client=http)
        return spec.url

    async def _own(self) -> None:
        try:
            async with Client(self._transport(), read_timeout_seconds=self.timeout, **self.options) as client:
                self.client = client
                self.ready.set_result(client)
                await self.stop.wait()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(exc if isinstance(exc, Exception) else MCPToolError(str(exc)))
        finally:
            self.client = None

    async def session(self) -> Client:
        """The live session, (re)connecting if there is none."""
        if self.ready is None or (self.ready.done() and (self.ready.exception() or self.client is None)):
            await self.reset()
            self.ready, self.stop = asyncio.get_running_loop().create_future(), asyncio.Event()
            self.owner = asyncio.create_task(self._own(), name=f"mcp-{self.name}")
        try:
            return await asyncio.wait_for(asyncio.shield(self.ready), self.timeout)
        except asyncio.TimeoutError as exc:
            await self.reset()
            raise MCPToolError(f"MCP server {self.name!r} did not connect within {self.timeout:g} s") from exc

    async def reset(self) -> None:
        """Close the session (the next request reconnects)."""
        if self.owner is not None and not self.owner.done():
            self.stop.set()
            try:
                await asyncio.wait_for(self.owner, 5)
            except (asyncio.TimeoutError, Exception):
                self.owner.cancel()
        self.owner, self.ready, self.client = None, None, None

    async def request(self, call: Callable[[Client], Any], retry: bool):
        """Run `call(session)`; a transport failure closes the session (and retries once if `retry`)."""
        for attempt in (1, 2):
            try:
                client = await self.session()
            except MCPToolError:
                raise
            except Exception as exc:
                await self.reset()
                if retry and attempt == 1:
                    continue
                raise MCPToolError(f"cannot reach MCP server {self.name!r}: {type(exc).__name__}: {exc}") from exc
            try:
                return await asyncio.wait_for(call(client), self.timeout)
            except MCPError as exc:  # an answer from the server, unless it went away (reconnect next time)
                if exc.code == CONNECTION_CLOSED:
                    await self.reset()
                raise MCPToolError(f"MCP server {self.name!r}: {exc}") from exc
            except asyncio.TimeoutError as exc:
                raise MCPToolError(f"MCP server {self.name!r} did not answer within {self.timeout:g} s") from exc
            except Exception as exc:  # the connection broke: reconnect next time
                await self.reset()
                if retry and attempt == 1:
                    continue
                raise MCPToolError(f"MCP server {self.name!r} failed: {type(exc).__name__}: {exc}") from exc


class MCPClient:
    """Several MCP servers behind one client; their tools become `Tool`s named `<server>_<tool>`.

    >>> with MCPClient({"time": StdioServer("mcp-server-time"), "docs": "http://127.0.0.1:8765/mcp"}) as mcp:
    ...     tools = mcp.get_tools()            # for ToolNode / the engine's tools=
    ...     mcp.call_tool("time", "get_current_time", {"timezone": "UTC"})

    Servers may ask the client for input while a call runs; the client can answer when given
    `elicitation(params) -> types.ElicitResult` (ask the user), `sampling(params) ->
    types.CreateMessageResult` (run an LLM) and `roots` (the URIs it works in). Callbacks may be
    sync or async; without them the client declares no such capability. `mode` picks the protocol:
    "auto" (2026-07-28 when the server speaks it, else the 2025-11-25 handshake), "legacy" or
    "2026-07-28".
    """

    def __init__(self, servers: Mapping[str, ServerSpec], *, prefix: bool = True, timeout: float = 30.0,
                 elicitation: Callable[[Any], Any] | None = None, sampling: Callable[[Any], Any] | None = None,
                 roots: Sequence[str] | None = None, mode: str = "auto") -> None:
        if not servers:
            raise ValueError("MCPClient needs at least one server")
        for name, spec in servers.items():
            if not isinstance(name, str) or not _SERVER_NAME.match(name):
                raise ValueError(f"invalid server name {name!r}: use 1-32 letters, digits, '_' or '-'")
            if not isinstance(spec, (StdioServer, HttpServer, str)):
                raise ValueError(f"server {name!r}: expected a StdioServer, an HttpServer or a URL, got {spec!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.prefix = prefix
        self.timeout = float(timeout)
        if mode not in ("auto", "legacy", "2026-07-28"):
            raise ValueError(f"mode must be 'auto', 'legacy' or '2026-07-28', got {mode!r}")
        options = _callbacks(elicitation, sampling, roots) | {"mode": mode}
        self.connections = {name: _Connection(name, spec, self.timeout, options) for name, spec in servers.items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> MCPClient:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="agentforge-mcp", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Disconnect from every server (stopping stdio servers) and stop the background loop."""
        if self._loop is None:
            return

        async def close_all():
            await asyncio.gather(*(c.reset() for c in self.connections.values()), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None

    def __enter__(self) -> MCPClient:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    async def __aenter__(self) -> MCPClient:
        return self.start()

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.close)

    def _submit(self, coro) -> concurrent.futures.Future:
        if self._loop is None:
            self.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro):
        return self._submit(coro).result()

    async def _arun(self, coro):
        return await asyncio.wrap_future(self._submit(coro))

    def _connection(self, server: str) -> _Connection:
        if server not in self.connections:
            raise ValueError(f"unknown MCP server {server!r}; known: {', '.join(self.connections)}")
        return self.connections[server]

    # --- tools --------------------------------------------------------------------------

    def get_tools(self, servers: list[str] | None = None) -> list[Tool]:
        """Every tool of every server (or of `servers`) as a `Tool`; a server that cannot be reached
        raises MCPToolError naming it."""
        return self._run(self._tools(servers))

    async def aget_tools(self, servers: list[str] | None = None) -> list[Tool]:
        return await self._arun(self._tools(servers))

    async def _tools(self, servers: list[str] | None) -> list[Tool]:
        tools = []
        for name in servers or list(self.connections):
            listed = await self._connection(name).request(lambda c: c.list_tools(), retry=True)
            tools += [self._as_tool(name, t) for t in listed.tools]
        return tools

    def _as_tool(self, server: str, spec) -> Tool:
        remote = spec.name
        schema = dict(spec.input_schema or {"type": "object", "properties": {}})

        async def call(**arguments):
            result = await self.acall_tool(server, remote, arguments)
            if result.is_error:
                raise MCPToolError(result.content.removeprefix("Error: "))
            return result.content

        name = f"{server}_{remote}" if self.prefix else remote
        return Tool(call, name=name[:64], description=spec.description or "", parameters=schema, timeout=None)

    def call_tool(self, server: str, name: str, arguments: dict | None = None,
                  on_progress: Callable[[float, float | None, str | None], Any] | None = None) -> ToolResult:
        """Call one tool; errors (from the tool or the connection) come back as an error result."""
        return self._run(self._call(server, name, arguments, on_progress, request_meta()))

    async def acall_tool(self, server: str, name: str, arguments: dict | None = None,
                         on_progress: Callable[[float, float | None, str | None], Any] | None = None) -> ToolResult:
        return await self._arun(self._call(server, name, arguments, on_progress, request_meta()))

    async def _call(self, server, name, arguments, on_progress, meta) -> ToolResult:
        async def progress(value, total, message):
            if on_progress is not None:
                outcome = on_progress(value, total, message)
                if asyncio.iscoroutine(outcome):
                    await outcome

        try:
            with _trace_context(meta):
                result = await self._connection(server).request(
                    lambda c: c.call_tool(name, arguments or {}, progress_callback=progress, meta=meta), retry=False)
        except (MCPToolError, ValueError) as exc:
            return ToolResult(f"Error: {exc}", is_error=True)
        text = _content_text(result.content)
        if not text and result.structured_content is not None:
            import json

            text = json.dumps(result.structured_content, ensure_ascii=False)
        return ToolResult(text, is_error=bool(result.is_error), data=result.structured_content)

    # --- resources and prompts ----------------------------------------------------------

    def list_resources(self, server: str) -> list:
        return self._run(self._connection(server).request(lambda c: _resources(c), retry=True))

    def read_resource(self, server: str, uri: str) -> str:
        """The text of a resource (binary parts as a short placeholder)."""
        result = self._run(self._connection(server).request(lambda c: c.read_resource(uri), retry=True))
        return "".join(getattr(part, "text", None) or f"[{getattr(part, 'mime_type', 'binary')} data]"
                       for part in result.contents)

    def list_prompts(self, server: str) -> list:
        return self._run(self._connection(server).request(lambda c: _prompts(c), retry=True))

    def get_prompt(self, server: str, name: str, arguments: dict[str, str] | None = None) -> list[dict]:
        """A prompt's messages as chat messages (role and text)."""
        result = self._run(self._connection(server).request(lambda c: c.get_prompt(name, arguments or {}), retry=True))
        return [{"role": m.role, "content": _content_text([m.content])} for m in result.messages]


@contextlib.contextmanager
def _trace_context(meta: dict | None) -> Iterator[None]:
    """The caller's `traceparent` as the current OpenTelemetry context while the request is made:
    the SDK's own client span (when an OpenTelemetry SDK is configured) hangs under the caller's span,
    and the trace context the SDK writes into `_meta` (SEP-414) continues the caller's trace."""
    if not meta or "traceparent" not in meta:
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    token = context.attach(TraceContextTextMapPropagator().extract(meta))
    try:
        yield
    finally:
        context.detach(token)


def _callbacks(elicitation, sampling, roots) -> dict[str, Any]:
    """The SDK `Client`'s callbacks for what the client can answer (their context argument dropped)."""
    for name, value in (("elicitation", elicitation), ("sampling", sampling)):
        if value is not None and not callable(value):
            raise ValueError(f"{name} must be a callable, got {value!r}")
    callbacks: dict[str, Any] = {}
    if elicitation is not None:
        callbacks["elicitation_callback"] = lambda ctx, params: call_maybe_async(elicitation, params)
    if sampling is not None:
        callbacks["sampling_callback"] = lambda ctx, params: call_maybe_async(sampling, params)
    if roots is not None:
        listed = types.ListRootsResult(roots=[types.Root(uri=str(uri)) for uri in roots])

        async def list_roots(ctx) -> types.ListRootsResult:
            return listed

        callbacks["list_roots_callback"] = list_roots
    return callbacks


async def _resources(client: Client) -> list:
    return (await client.list_resources()).resources


async def _prompts(client: Client) -> list:
    return (await client.list_prompts()).prompts


def _content_text(content) -> str:
    parts = []
    for part in content or []:
        kind = getattr(part, "type", None)
        if kind == "text":
            parts.append(part.text)
        elif kind == "resource":
            parts.append(getattr(part.resource, "text", None) or f"[resource {part.resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {part.uri}]")
        else:
            parts.append(f"[{kind} {getattr(part, 'mime_type', '')}]".replace(" ]", "]"))
    return "\n".join(parts)
