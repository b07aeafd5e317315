"""A tool the foreign framework runs itself, given to our chat model only for its name and schema."""

from __future__ import annotations

from typing import Any

from agentforge.tools import Tool


def spec_tool(spec: dict, runner: str) -> Tool:
    """An AgentForge `Tool` for an OpenAI function spec whose calls `runner` (LangChain, LlamaIndex) executes."""
    function = spec["function"]

    def run_elsewhere(**_: Any) -> None:
        raise RuntimeError(f"tool {function['name']!r} is run by {runner}, not by the chat model")

    return Tool(run_elsewhere, name=function["name"], description=function.get("description", ""),
                parameters=function.get("parameters") or {"type": "object", "properties": {}})
