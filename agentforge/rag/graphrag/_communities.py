"""Hierarchical communities of the entity graph: Leiden (graspologic-native, as Microsoft GraphRAG
uses it) at level 0, communities larger than `max_cluster_size` split again one level down.
Entities with no relationship are communities of their own, so every entity has one."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

SEED = 0xDEADBEEF


@dataclass(slots=True)
class Community:
    id: int
    level: int
    parent: int | None
    entities: list[str]
    children: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"id": self.id, "level": self.level, "parent": self.parent, "entities": self.entities,
                "children": self.children}


def detect(graph: nx.Graph, *, max_cluster_size: int = 10, seed: int = SEED) -> list[Community]:
    """Communities of `graph` at every level, parents before children, ids from 0."""
    import graspologic_native as gn

    edges = [(a, b, float(data.get("weight", 1.0)) or 1.0) for a, b, data in graph.edges(data=True)]
    members: dict[tuple[int, int], list[str]] = {}
    parents: dict[tuple[int, int], int | None] = {}
    if edges:
        for row in gn.hierarchical_leiden(edges, max_cluster_size=max_cluster_size, seed=seed):
            members.setdefault((row.level, row.cluster), []).append(row.node)
            parents[(row.level, row.cluster)] = row.parent_cluster
    clustered = {node for nodes in members.values() for node in nodes}
    next_cluster = max((cluster for _, cluster in members), default=-1) + 1
    for node in sorted(set(graph) - clustered):
        members[(0, next_cluster)], parents[(0, next_cluster)] = [node], None
        next_cluster += 1
    order = sorted(members, key=lambda key: (key[0], min(members[key])))
    ids = {key: n for n, key in enumerate(order)}
    by_cluster = {cluster: ids[key] for key in order for cluster in [key[1]]}
    communities = [Community(ids[key], key[0], by_cluster.get(parents[key]) if parents[key] is not None else None,
                             sorted(members[key])) for key in order]
    for community in communities:
        if community.parent is not None:
            communities[community.parent].children.append(community.id)
    return communities
