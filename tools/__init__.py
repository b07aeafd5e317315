"""Tools for agents: typed `Tool`s from functions, a `ToolNode` for graphs, and MCP (client and server)."""

from .node import ToolNode, tools_condition
from .tool import Tool, ToolResult, as_tool, tool

__all__ = ["Tool", "ToolNode", "ToolResult", "as_tool", "tool", "tools_condition"]
