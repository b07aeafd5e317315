"""The knowledge-graph MCP server: `agentforge mcp serve graphrag --kb NAME` lets any MCP client
ask a knowledge base's graph in each mode, list its communities and look up an entity."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentforge.tools import Tool
from agentforge.tools.mcp_server import MCPToolServer

from .index import GraphIndex
from .search import MODES


def build(index: GraphIndex) -> MCPToolServer:
    kb = index.kb.name

    def list_communities(level: Annotated[int | None, Field(ge=0, description="only this level")] = None) -> str:
        reports = {r["community"]: r for r in index.reports}
        rows = [f"{c['id']} (level {c['level']}, {len(c['entities'])} entities): "
                + (f"{reports[c['id']]['title']} — {reports[c['id']]['summary']}" if c["id"] in reports else "no report")
                for c in index.communities if level is None or c["level"] == level]
        return "\n".join(rows) or "The graph has no communities (yet)."

    def describe_entity(name: Annotated[str, Field(min_length=1, max_length=200)]) -> str:
        entity = index.entity(name)
        if entity is None:
            return f"No entity {name!r} in the graph of {kb!r}."
        lines = [f"{entity['name']} ({entity['type']}): {entity['description']}", "Sources: " +
                 ", ".join(entity["sources"])]
        lines += [f"- {r['with']}: {r['description']}" for r in entity["relationships"]]
        lines += [f"Report (community {r['community']}): {r['title']} — {r['summary']}" for r in entity["reports"]]
        return "\n".join(lines)

    return MCPToolServer(f"knowledge-graph-{kb}", [
        *(index.as_tool(mode=mode, name=f"{mode}_search") for mode in MODES),
        Tool(list_communities, description=f"The communities of the '{kb}' knowledge graph with their report titles."),
        Tool(describe_entity, description=f"An entity of the '{kb}' knowledge graph: description, relationships, "
                                          f"sources and reports."),
    ])
