"""Community reports: the model reads a community's entities and relationships and writes a title,
a summary, an importance rating and findings that reference the entities they rest on — under the
`Report` schema, so every reply parses. A community of one entity, or one whose reply failed, gets
an extractive report (its entities' own descriptions) at no LLM cost."""

from __future__ import annotations

import hashlib
import json

import networkx as nx

from agentforge.engine.protocol import ChatMessage

from ._communities import Community
from .cost import Meter
from .schema import Report

PROMPT_VERSION = 1
MAX_ROWS = 20
PROMPT = ("You write a report on a community of entities from a knowledge graph.\n\nEntities:\n{entities}\n\n"
          "Relationships:\n{relationships}\n\nWrite a title naming the community's key entities, a summary of how "
          "they are connected, an importance rating from 0 to 10 with its reason, and up to 3 findings; each "
          "finding lists the numbers of the entities it is about.")


def content_key(graph: nx.Graph, community: Community) -> str:
    """A hash of everything a report is written from: a report is reused while it is unchanged."""
    entities, relationships = _rows(graph, community)
    payload = json.dumps([PROMPT_VERSION, entities, relationships], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


async def write_report(meter: Meter, graph: nx.Graph, community: Community, key: str, *,
                       min_size: int = 2) -> dict:
    """The report of `community` as a dict (see `_finish`); the model is called only for a
    community of at least `min_size` entities."""
    entities, relationships = _rows(graph, community)
    if len(community.entities) < min_size:
        return _finish(graph, community, key, _extractive(entities), "extractive", None)
    prompt = PROMPT.format(
        entities="\n".join(f"{n}. {e['name']} ({e['type']}): {e['description']}" for n, e in enumerate(entities, 1)),
        relationships="\n".join(f"- {r['source']} -> {r['target']}: {r['description']}" for r in relationships)
        or "(none)")
    try:
        report = await meter.structured("reports", Report, [ChatMessage(role="user", content=prompt)])
    except ValueError as exc:
        return _finish(graph, community, key, _extractive(entities), "extractive", str(exc))
    findings = [{"summary": f.summary, "explanation": f.explanation,
                 "entities": [entities[n - 1]["key"] for n in dict.fromkeys(f.references) if 1 <= n <= len(entities)]}
                for f in report.findings]
    body = {"title": report.title.strip() or entities[0]["name"], "summary": report.summary,
            "rating": float(report.rating), "rating_explanation": report.rating_explanation, "findings": findings}
    return _finish(graph, community, key, body, "llm", None)


def relocate(report: dict, graph: nx.Graph, community: Community) -> dict:
    """A cached report placed on this run's community (ids and source chunks may have moved)."""
    body = {k: report[k] for k in ("title", "summary", "rating", "rating_explanation", "findings")}
    return _finish(graph, community, report["key"], body, report["written_by"], report["error"])


def _rows(graph: nx.Graph, community: Community) -> tuple[list[dict], list[dict]]:
    """The community's most connected entities and strongest inner relationships, capped."""
    nodes = sorted(community.entities, key=lambda n: (-graph.degree(n), n))[:MAX_ROWS]
    entities = [{"key": n, "name": graph.nodes[n]["name"], "type": graph.nodes[n]["type"],
                 "description": graph.nodes[n]["description"]} for n in nodes]
    inner = set(community.entities)
    edges = sorted(((*sorted((a, b)), d) for a, b, d in graph.subgraph(inner).edges(data=True)),
                   key=lambda e: (-e[2]["weight"], e[0], e[1]))[:MAX_ROWS]
    relationships = [{"source": graph.nodes[a]["name"], "target": graph.nodes[b]["name"],
                      "description": d["description"]} for a, b, d in edges]
    return entities, relationships


def _extractive(entities: list[dict]) -> dict:
    names = [e["name"] for e in entities[:3]]
    return {"title": ", ".join(names), "summary": " ".join(e["description"] for e in entities[:3] if e["description"]),
            "rating": 0.0, "rating_explanation": "not rated: written from the entities' own descriptions",
            "findings": []}


def _finish(graph: nx.Graph, community: Community, key: str, body: dict, written_by: str, error: str | None) -> dict:
    chunks = sorted({c for n in community.entities for c in graph.nodes[n]["chunks"]})
    return {"key": key, "community": community.id, "level": community.level, **body, "written_by": written_by,
            "error": error, "entities": community.entities, "chunks": chunks}
