"""Interop with the MCP reference servers from npm (`make test` installs them under .mcp-servers/):
server-everything over stdio, streamable HTTP and legacy SSE; server-filesystem over stdio, and
over HTTP through our server re-serving its tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentforge.tools.mcp_client import HttpServer, MCPClient, StdioServer
from agentforge.tools.mcp_server import MCPToolServer

BIN = Path(__file__).parents[2] / ".mcp-servers" / "node_modules" / ".bin"
EVERYTHING, FILESYSTEM = BIN / "mcp-server-everything", BIN / "mcp-server-filesystem"


@pytest.fixture(scope="module", autouse=True)
def installed(peers):
    peers(EVERYTHING, FILESYSTEM, what="the npm MCP reference servers are")


def exercise_everything(mcp: MCPClient) -> None:
    names = {t.name for t in mcp.get_tools()}
    assert {"ev_echo", "ev_get-sum", "ev_trigger-long-running-operation"} <= names
    assert mcp.call_tool("ev", "echo", {"message": "hi"}).content == "Echo: hi"
    assert mcp.call_tool("ev", "get-sum", {"a": 2, "b": 3}).content == "The sum of 2 and 3 is 5."
    progress = []
    done = mcp.call_tool("ev", "trigger-long-running-operation", {"duration": 1, "steps": 3},
                         on_progress=lambda p, total, _: progress.append((p, total)))
    assert "completed" in done.content and progress == [(1, 3), (2, 3), (3, 3)]
    resources = mcp.list_resources("ev")
    assert resources and mcp.read_resource("ev", resources[0].uri)
    prompts = [p.name for p in mcp.list_prompts("ev")]
    assert "simple-prompt" in prompts
    assert mcp.get_prompt("ev", "simple-prompt") == [{"role": "user", "content": "This is a simple prompt without arguments."}]
    assert mcp.call_tool("ev", "get-sum", {"a": "x"}).is_error


def test_server_everything_over_stdio():
    with MCPClient({"ev": StdioServer(str(EVERYTHING), ["stdio"])}) as mcp:
        exercise_everything(mcp)


@pytest.mark.parametrize("mode, transport, path", [("streamableHttp", "streamable-http", "/mcp"), ("sse", "sse", "/sse")])
def test_server_everything_over_http(mode, transport, path, spawn):
    _, port = spawn([str(EVERYTHING), mode], env={"PORT": "{port}"})
    with MCPClient({"ev": HttpServer(f"http://127.0.0.1:{port}{path}", transport=transport)}) as mcp:
        exercise_everything(mcp)


def test_server_filesystem_over_stdio_and_re_served_over_http(tmp_path, serve_http):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub").mkdir()
    with MCPClient({"fs": StdioServer(str(FILESYSTEM), [str(tmp_path)])}) as upstream:
        tools = upstream.get_tools()
        assert {"fs_read_text_file", "fs_list_directory", "fs_write_file"} <= {t.name for t in tools}
        assert upstream.call_tool("fs", "read_text_file", {"path": str(tmp_path / "a.txt")}).content == "alpha"
        denied = upstream.call_tool("fs", "read_text_file", {"path": "/etc/passwd"})
        assert denied.is_error and "Access denied" in denied.content

        proxy = serve_http(MCPToolServer("proxy", tools))
        with MCPClient({"proxy": proxy.url}) as mcp:
            listing = mcp.call_tool("proxy", "fs_list_directory", {"path": str(tmp_path)}).content
            assert "[FILE] a.txt" in listing and "[DIR] sub" in listing
