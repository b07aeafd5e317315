"""The agent card of a graph served over A2A: what it is, what it can do, where and how to call it."""

from __future__ import annotations

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    APIKeySecurityScheme,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0

from agentforge.graphs import CompiledStateGraph
from agentforge.tools import Tool

MODES = ["text/plain", "application/json"]
REST_PATH = "/rest"
API_KEY_HEADER = "X-API-Key"


def agent_card(graph: CompiledStateGraph, url: str, *, name: str | None = None, description: str | None = None,
               version: str = "1.0.0", secured: bool = False) -> AgentCard:
    """The card for `graph` served at `url` (JSON-RPC at `url`, HTTP+JSON at `url/rest`): one
    skill per tool the graph's tool nodes offer, or one skill for the graph itself; bearer-token
    and API-key schemes (either one suffices) when `secured`."""
    url = url.rstrip("/")
    name = name or graph.name or "agent"
    tools = graph_tools(graph)
    description = description or (f"An AgentForge agent with tools: {', '.join(t.name for t in tools)}." if tools
                                  else f"An AgentForge graph ({', '.join(graph.spec.nodes)}).")
    skills = [AgentSkill(id=t.name, name=t.name, description=t.description or t.name, tags=["tool"],
                         input_modes=MODES, output_modes=MODES) for t in tools]
    skills = skills or [AgentSkill(id=name, name=name, description=description, tags=["graph"],
                                   input_modes=MODES, output_modes=MODES)]
    card = AgentCard(
        name=name, description=description, version=version,
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION_1_0),
            AgentInterface(url=url + REST_PATH, protocol_binding="HTTP+JSON", protocol_version=PROTOCOL_VERSION_1_0),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=MODES, default_output_modes=MODES, skills=skills,
    )
    if secured:
        card.security_schemes["bearer"].CopyFrom(SecurityScheme(
            http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer", description="Authorization: Bearer <key>")))
        card.security_schemes["apiKey"].CopyFrom(SecurityScheme(
            api_key_security_scheme=APIKeySecurityScheme(location="header", name=API_KEY_HEADER)))
        for scheme in ("bearer", "apiKey"):
            requirement = SecurityRequirement()
            requirement.schemes[scheme].SetInParent()
            card.security_requirements.append(requirement)
    return card


def graph_tools(graph: CompiledStateGraph) -> list[Tool]:
    """The tools the nodes of `graph` (and its subgraphs) run, in node order: a node action with a
    `tools` mapping of Tools (a `ToolNode`, an agent's tool step)."""
    found: dict[str, Tool] = {}
    for node in graph.spec.nodes.values():
        tools = getattr(node.action, "tools", None)
        if isinstance(tools, dict):
            found.update((name, t) for name, t in tools.items() if isinstance(t, Tool))
        if node.subgraph is not None:
            found.update((t.name, t) for t in graph_tools(node.subgraph))
    return list(found.values())
