"""The graph as the chat server's viewer draws it: entities with their layout position, colour
group (top-level community), description, sources and relationships; communities with their
reports. Read from the files the index wrote, so showing a graph loads no model."""

from __future__ import annotations

from pathlib import Path

from ..knowledge_base import default_path
from ._store import load


def graph_folder(name: str, path: str | Path | None = None) -> Path:
    """Where knowledge base `name` (at `path`, else its default place) keeps its graph."""
    return (Path(path).expanduser() if path is not None else default_path(name)) / "graph"


def graph_view(name: str, path: str | Path | None = None) -> dict | None:
    """The view of knowledge base `name`'s graph (at `path`, else its default place); None when
    it has none yet."""
    graph, communities, reports = load(graph_folder(name, path))
    if not graph.number_of_nodes():
        return None
    by_community = {r["community"]: r for r in reports}
    nodes = [{"id": key, "name": d["name"], "type": d["type"], "description": d["description"],
              "sources": d["sources"], "x": d.get("x", 0.0), "y": d.get("y", 0.0), "degree": graph.degree(key),
              "communities": d.get("communities", []),
              "group": d["communities"][0] if d.get("communities") else -1} for key, d in graph.nodes(data=True)]
    edges = [{"source": a, "target": b, "weight": d["weight"], "description": d["description"]}
             for a, b, d in graph.edges(data=True)]
    shown = [{**c, "report": _report(by_community.get(c["id"]))} for c in communities]
    return {"name": name, "nodes": nodes, "edges": edges, "communities": shown}


def _report(report: dict | None) -> dict | None:
    if report is None:
        return None
    return {k: report[k] for k in ("title", "summary", "rating", "rating_explanation", "findings", "written_by")}
