"""An MCP server on stdio whose one tool is a traced graph (`shout`); its spans go to the SQLite
trace store named on the command line.

    python tests/agentforge/tracing/_traced_mcp_server.py traces.sqlite
"""

from __future__ import annotations

import sys

from typing_extensions import TypedDict

from agentforge.graphs import START, StateGraph
from agentforge.tools.mcp_server import MCPToolServer, graph_tool
from agentforge.tracing import SqliteTraceStore, traced


class Text(TypedDict):
    text: str


builder = StateGraph(Text)
builder.add_node("upper", lambda state: {"text": state["text"].upper()})
builder.add_edge(START, "upper")
graph = traced(builder.compile(name="shouter"), [SqliteTraceStore(sys.argv[1])])

if __name__ == "__main__":
    MCPToolServer("shouter", [graph_tool(graph, "shout", "Shout the text.")]).run()
