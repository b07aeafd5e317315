"""MCP: our servers and client over stdio and HTTP, a server nobody here wrote (mcp-server-time),
progress, bearer tokens, and servers that crash, hang or restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mcp import Client

from agentforge.graphs import START, StateGraph
from agentforge.tools import tool
from agentforge.tools.mcp_client import HttpServer, MCPClient, StdioServer
from agentforge.tools.mcp_server import MCPToolServer, Prompt, Resource, graph_tool, report_progress
from agentforge.tools.servers import calculator

PY = sys.executable


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@tool
async def slow_steps(steps: int = 3) -> str:
    """Work in steps, reporting progress."""
    for i in range(steps):
        report_progress(i + 1, steps, f"step {i + 1}")
        await asyncio.sleep(0.01)
    return "done"


def demo_server() -> MCPToolServer:
    return MCPToolServer(
        "demo", [echo, slow_steps],
        resources=[Resource("memo://today", "today", lambda: "Remember the milk.")],
        prompts=[Prompt("greet", lambda name: f"Say hello to {name}.", "A greeting", [("name", "Who", True)])],
    )


def test_our_server_in_memory_with_the_official_client():
    async def run():
        async with Client(demo_server().server) as client:
            tools = (await client.list_tools()).tools
            called = await client.call_tool("echo", {"text": "hi"})
            bad = await client.call_tool("echo", {"txt": "hi"})
            resource = await client.read_resource("memo://today")
            prompt = await client.get_prompt("greet", {"name": "Ada"})
            return tools, called, bad, resource, prompt

    tools, called, bad, resource, prompt = asyncio.run(run())
    assert [t.name for t in tools] == ["echo", "slow_steps"]
    assert tools[0].input_schema["required"] == ["text"]
    assert called.content[0].text == "hi" and not called.is_error
    assert bad.is_error and "text: Field required" in bad.content[0].text
    assert resource.contents[0].text == "Remember the milk."
    assert prompt.messages[0].content.text == "Say hello to Ada."


def test_stdio_interop_with_mcp_server_time_and_our_calculator():
    time_server = shutil.which("mcp-server-time") or str(Path(sys.executable).parent / "mcp-server-time")
    servers = {"time": StdioServer(time_server, ["--local-timezone", "UTC"]),
               "calc": StdioServer(PY, ["-m", "agentforge.tools.servers.calculator"])}
    with MCPClient(servers) as mcp:
        tools = {t.name: t for t in mcp.get_tools()}
        assert {"time_get_current_time", "time_convert_time", "calc_calculate"} <= set(tools)
        now = json.loads(tools["time_get_current_time"].invoke({"timezone": "Europe/Paris"}).content)
        assert now["timezone"] == "Europe/Paris" and "T" in now["datetime"]
        converted = json.loads(mcp.call_tool("time", "convert_time", {
            "source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}).content)
        assert converted["target"]["datetime"].endswith("21:00:00+09:00")
        assert tools["calc_calculate"].invoke({"expression": "2 ** 10 + 1"}).content == "1025"
        error = tools["calc_calculate"].invoke({"expression": "os.system(1)"})
        assert error.is_error and "is not allowed" in error.content
        assert mcp.call_tool("calc", "no_such_tool", {}).content == "Error: MCP server 'calc': Unknown tool: no_such_tool"


def test_http_with_bearer_token_progress_resources_and_prompts(serve_http):
    http = serve_http(demo_server(), token="s3cret")
    request = urllib.request.Request(http.url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["message"] == "missing or invalid bearer token"

    with MCPClient({"nokey": HttpServer(http.url)}, timeout=5) as mcp:
        assert mcp.call_tool("nokey", "echo", {"text": "x"}).is_error

    progress = []
    with MCPClient({"demo": HttpServer(http.url, headers={"Authorization": "Bearer s3cret"})}) as mcp:
        assert mcp.call_tool("demo", "echo", {"text": "over http"}).content == "over http"
        result = mcp.call_tool("demo", "slow_steps", {"steps": 3}, on_progress=lambda p, t, m: progress.append((p, t, m)))
        assert result.content == "done"
        assert mcp.read_resource("demo", "memo://today") == "Remember the milk."
        assert [r.uri for r in mcp.list_resources("demo")] == ["memo://today"]
        assert mcp.get_prompt("demo", "greet", {"name": "Bo"}) == [{"role": "user", "content": "Say hello to Bo."}]
        assert [p.name for p in mcp.list_prompts("demo")] == ["greet"]
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def test_a_graph_served_as_a_tool_reports_each_step(serve_http):
    from typing import TypedDict

    class Count(TypedDict):
        n: int

    g = StateGraph(Count)
    g.add_node("double", lambda s: {"n": s["n"] * 2}).add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "double").add_edge("double", "inc")
    server = MCPToolServer("graphs", [graph_tool(g.compile(), "double_then_inc", "Doubles n, then adds one.")])
    http = serve_http(server)
    progress = []
    with MCPClient({"graphs": http.url}) as mcp:
        (t,) = mcp.get_tools()
        assert t.name == "graphs_double_then_inc" and t.parameters["properties"]["n"]["type"] == "integer"
        result = mcp.call_tool("graphs", "double_then_inc", {"n": 5}, on_progress=lambda p, _, m: progress.append(m))
    assert json.loads(result.content) == {"n": 11}
    assert progress == ["finished double", "finished inc"]


FLAKY_SERVER = """
import os, sys, time
from agentforge.tools import tool
from agentforge.tools.mcp_server import MCPToolServer

@tool
def crash() -> str:
    '''Kill this server.'''
    os._exit(1)

@tool(timeout=None)
def hang() -> str:
    '''Never answer.'''
    time.sleep(3600)

@tool
def ping() -> str:
    '''Answer pong.'''
    return "pong"

MCPToolServer("flaky", [crash, hang, ping]).run()
"""


def test_a_crashing_or_hanging_server_gives_tool_errors_and_the_client_recovers(tmp_path):
    script = tmp_path / "flaky.py"
    script.write_text(textwrap.dedent(FLAKY_SERVER))
    with MCPClient({"flaky": StdioServer(PY, [str(script)])}, timeout=3) as mcp:
        assert mcp.call_tool("flaky", "ping").content == "pong"
        start = time.perf_counter()
        hung = mcp.call_tool("flaky", "hang")
        assert hung.is_error and "did not answer within 3 s" in hung.content
        assert time.perf_counter() - start < 8
        crashed = mcp.call_tool("flaky", "crash")
        assert crashed.is_error and "flaky" in crashed.content
        assert mcp.call_tool("flaky", "ping").content == "pong"  # reconnected: a fresh server process


def test_the_client_reconnects_after_an_http_server_restarts(serve_http):
    http = serve_http(demo_server())
    with MCPClient({"demo": http.url}, timeout=5) as mcp:
        assert mcp.call_tool("demo", "echo", {"text": "before"}).content == "before"
        http.stop()
        down = mcp.call_tool("demo", "echo", {"text": "while down"})
        assert down.is_error
        serve_http(demo_server(), port=http.port)
        assert mcp.call_tool("demo", "echo", {"text": "after"}).content == "after"


def test_bad_client_configuration_is_refused():
    with pytest.raises(ValueError, match="invalid server name"):
        MCPClient({"has space": "http://x"})
    with pytest.raises(ValueError, match="expected a StdioServer"):
        MCPClient({"a": 42})
    with pytest.raises(ValueError, match="at least one server"):
        MCPClient({})
    with MCPClient({"calc": StdioServer(PY, ["-m", "agentforge.tools.servers.calculator"])}) as mcp:
        assert mcp.call_tool("nope", "x").content.startswith("Error: unknown MCP server 'nope'")
    with MCPClient({"missing": StdioServer("/nonexistent/binary")}, timeout=5) as mcp:
        result = mcp.call_tool("missing", "x")
        assert result.is_error and "missing" in result.content


def test_calculator_is_safe():
    assert calculator.evaluate("2 * (3 + 4) ** 2") == 98
    assert calculator.evaluate("187.42 - 23.05") == 164.37  # binary noise (164.36999999999998) rounded away
    assert calculator.evaluate("10 / 3") == 3.33333333333 and calculator.evaluate("2 ** 70") == 2**70
    for expression, problem in [("__import__('os').system('true')", "not allowed"), ("9 ** 9 ** 9", "too large"),
                                ("1 / 0", "division by zero"), ("(1).__class__", "not allowed"), ("x" * 2000, "too long"),
                                ("factorial(100000)", "too large"), ("open('/etc/passwd')", "not allowed")]:
        with pytest.raises(calculator.CalculatorError, match=problem):
            calculator.evaluate(expression)
