"""The knowledge-base MCP server: `agentforge mcp serve kb --kb NAME` lets any MCP client (Claude
Desktop, an IDE, another agent) search a knowledge base and read what it holds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agentforge.tools import Tool
from agentforge.tools.mcp_server import MCPToolServer

from ._adapters import format_hits
from .knowledge_base import KnowledgeBase


def build(kb: KnowledgeBase) -> MCPToolServer:
    def search(query: Annotated[str, Field(min_length=1, max_length=1000, description="what to look for")],
               k: Annotated[int, Field(ge=1, le=50, description="how many passages")] = 5,
               mode: Literal["hybrid", "dense", "bm25"] = "hybrid") -> str:
        return format_hits(kb.search(query, k=k, mode=mode))

    def list_sources() -> str:
        sources = kb.sources()
        return "\n".join(f"{source} ({n} chunks)" for source, n in sources.items()) or "The knowledge base is empty."

    return MCPToolServer(f"knowledge-base-{kb.name}", [
        Tool(search, description=f"Search the '{kb.name}' knowledge base; numbered passages with their source files."),
        Tool(list_sources, description=f"The files in the '{kb.name}' knowledge base and their chunk counts."),
    ])
