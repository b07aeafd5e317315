"""From per-chunk extractions to one `networkx` graph: entity resolution (normalized names, then
names whose embeddings and spelling both agree), merged descriptions, one type per entity (the
most frequent; conflicts reported), relationships summed over the chunks that state them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ._extract import normalize

MAX_DESCRIPTION = 500


@dataclass(slots=True)
class _Group:
    names: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)
    descriptions: dict = field(default_factory=dict)  # description -> None, in first-seen order
    chunks: dict = field(default_factory=dict)  # chunk id -> source

    def absorb(self, other: _Group) -> None:
        self.names.update(other.names)
        self.types.update(other.types)
        self.descriptions.update(other.descriptions)
        self.chunks.update(other.chunks)


def build_graph(extractions: dict[str, dict], sources: dict[str, str], embed, *, merge_similarity: float = 0.9,
                min_concept_chunks: int = 2) -> tuple[nx.Graph, list[str]]:
    """The entity graph of `extractions` (chunk id -> {entities, relationships}) and warnings
    (entities named with more than one type). `embed(texts)` gives name vectors for resolution;
    NLP "concept" entities seen in fewer than `min_concept_chunks` chunks are pruned."""
    groups: dict[str, _Group] = {}
    surnames_in: dict[str, dict[str, str]] = {}  # chunk id -> its lone surnames' full-name keys
    for chunk_id, record in extractions.items():
        surnames = surnames_in[chunk_id] = _surnames({normalize(e["name"]) for e in record["entities"]})
        for entity in record["entities"]:
            key = normalize(entity["name"])
            key = surnames.get(key, key)
            if not key:
                continue
            group = groups.setdefault(key, _Group())
            group.names[entity["name"]] += 1
            if entity["type"]:
                group.types[entity["type"]] += 1
            if entity["description"]:
                group.descriptions[entity["description"]] = None
            group.chunks[chunk_id] = sources.get(chunk_id, "")
    alias = _resolve(groups, embed, merge_similarity)
    merged: dict[str, _Group] = {}
    for key, group in groups.items():
        merged.setdefault(alias[key], _Group()).absorb(group)
    graph, warnings = nx.Graph(), []
    for key, group in merged.items():
        if set(group.types) == {"concept"} and len(group.chunks) < min_concept_chunks:
            continue
        name = max(group.names, key=lambda n: (group.names[n], len(n), n))
        kind = max(group.types, key=lambda t: (group.types[t], t)) if group.types else "unknown"
        if len(group.types) > 1:
            warnings.append(f"entity {name!r} was named with types {', '.join(sorted(group.types))}; kept {kind!r}")
        graph.add_node(key, name=name, type=kind, types=sorted(group.types), description=_join(group.descriptions),
                       chunks=sorted(group.chunks), sources=sorted(set(group.chunks.values()) - {""}))
    for chunk_id, record in extractions.items():
        surnames = surnames_in[chunk_id]
        for rel in record["relationships"]:
            a, b = (alias.get(surnames.get(key, key)) for key in (normalize(rel[end]) for end in ("source", "target")))
            if a is None or b is None or a == b or a not in graph or b not in graph:
                continue
            if not graph.has_edge(a, b):
                graph.add_edge(a, b, weight=0.0, descriptions={}, chunks={})
            edge = graph.edges[a, b]
            edge["weight"] += float(rel["strength"])
            edge["descriptions"][rel["description"]] = None
            edge["chunks"][chunk_id] = None
    for _, _, edge in graph.edges(data=True):
        edge["description"] = _join(edge.pop("descriptions"))
        edge["chunks"] = sorted(edge["chunks"])
    return graph, warnings


def _resolve(groups: dict[str, _Group], embed, threshold: float) -> dict[str, str]:
    """Each key's canonical key: keys whose names embed within `threshold` cosine similarity and
    spell alike (rapidfuzz ratio >= 80, same digits, no conflicting types) become one."""
    from rapidfuzz import fuzz

    keys = sorted(groups)
    parent = {key: key for key in keys}

    def find(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    if len(keys) < 2 or threshold >= 1:
        return {key: find(key) for key in keys}
    vectors = np.asarray(embed(keys), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similar = vectors @ vectors.T
    for i, j in zip(*np.nonzero(np.triu(similar >= threshold, k=1))):
        a, b = keys[i], keys[j]
        types_a, types_b = set(groups[a].types), set(groups[b].types)
        if (types_a and types_b and not types_a & types_b) or re.findall(r"\d+", a) != re.findall(r"\d+", b):
            continue
        if fuzz.ratio(a, b) >= 80:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {key: find(key) for key in keys}


def _surnames(keys: set[str]) -> dict[str, str]:
    """Within one chunk, a one-word name that ends exactly one longer name stands for it ("Quell"
    after "Mara Quell")."""
    out = {}
    for key in keys:
        if key and " " not in key:
            fuller = [other for other in keys if other.endswith(" " + key)]
            if len(fuller) == 1:
                out[key] = fuller[0]
    return out


def _join(descriptions: dict) -> str:
    text = " ".join(d if d.endswith((".", "!", "?")) else d + "." for d in descriptions)
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION].rsplit(" ", 1)[0] + " ..."
