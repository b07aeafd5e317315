"""The demo agent of `make demo`, `agentforge demo` and `agentforge chat`: a ReAct agent on the
embedded model with the shipped calculator and a search over AgentForge's own docs (knowledge
base "agentforge-docs", ingested at start: only changed files are embedded again)."""

from __future__ import annotations

from pathlib import Path

from agentforge.agents import ChatModel, as_chat_model, create_react_agent
from agentforge.graphs import CompiledStateGraph
from agentforge.rag import KnowledgeBase
from agentforge.tools import Tool
from agentforge.tools.servers import calculator

DOCS = Path(__file__).resolve().parents[1] / "docs"  # in a source checkout; absent from a wheel


def docs_knowledge_base(docs: Path = DOCS, path: Path | None = None) -> KnowledgeBase | None:
    """AgentForge's docs as a knowledge base, brought up to date; None when `docs` is absent."""
    if not docs.is_dir():
        return None
    kb = KnowledgeBase("agentforge-docs", path=path)
    kb.ingest(docs, patterns=("**/*.md",))
    return kb


def demo_tools(knowledge_base: KnowledgeBase | None = None) -> list[Tool]:
    """The calculator's tools, and `search_docs` over `knowledge_base` when given."""
    tools = list(calculator.build().tools.values())
    if knowledge_base is not None:
        tools.append(knowledge_base.as_tool(name="search_docs", k=3, description=(
            "Search AgentForge's documentation. Returns numbered passages with their source files.")))
    return tools


def demo_agent(model: ChatModel | str, *, knowledge_base: KnowledgeBase | None = None, checkpointer=None,
               approve_tools: bool = False) -> CompiledStateGraph:
    """The demo ReAct agent over `model` (a ChatModel or a model name). One call per reply: a small
    model asked for several sprays calls over every tool."""
    model = as_chat_model(model).bind_tools([], parallel_tool_calls=False)
    return create_react_agent(model, demo_tools(knowledge_base), checkpointer=checkpointer,
                              approve_tools=approve_tools, name="demo")
