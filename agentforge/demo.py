"""The demo agent of `make demo`, `agentforge demo` and `agentforge chat`: a ReAct agent on the
embedded model with the shipped calculator and a read-only view of AgentForge's own docs."""

from __future__ import annotations

from pathlib import Path

from agentforge.agents import ChatModel, as_chat_model, create_react_agent
from agentforge.graphs import CompiledStateGraph
from agentforge.tools import Tool
from agentforge.tools.servers import calculator, filesystem

DOCS = Path(__file__).resolve().parents[1] / "docs"  # in a source checkout; absent from a wheel


def demo_tools(docs: Path | None = DOCS) -> list[Tool]:
    """The calculator's tools, and the filesystem's reading tools over `docs` when it exists."""
    tools = list(calculator.build().tools.values())
    if docs is not None and docs.is_dir():
        tools += list(filesystem.build(docs, read_only=True).tools.values())
    return tools


def demo_agent(model: ChatModel | str, *, checkpointer=None, approve_tools: bool = False,
               docs: Path | None = DOCS) -> CompiledStateGraph:
    """The demo ReAct agent over `model` (a ChatModel or a model name). One call per reply: a small
    model asked for several sprays calls over every tool."""
    model = as_chat_model(model).bind_tools([], parallel_tool_calls=False)
    return create_react_agent(model, demo_tools(docs), checkpointer=checkpointer, approve_tools=approve_tools,
                              name="demo")
