"""Questions over the graph. `local`: the entities nearest the question, their neighbours and
relationships, the chunks that state them and their communities' reports. `global`: map-reduce
over community reports — each batch yields scored points, the best points make the answer.
`drift`: a global primer over the closest reports asks follow-up questions, each answered
locally, then all is reduced. `hybrid`: local graph chunks fused with the knowledge base's own
hybrid search. Every answer cites numbered sources (chunks or reports) and keeps why each
source was in its context."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import numpy as np

from agentforge.engine.protocol import ChatMessage

from ..answer import check_citations
from ..documents import Hit
from ..knowledge_base import _hit
from ..retrieval import reciprocal_rank_fusion
from ._extract import normalize
from .cost import Cost, Meter
from .schema import MapAnswer, Primer

_MARKER = re.compile(r"\[\d+\]")
MIN_SIMILARITY = 0.5  # entities less similar to the question do not seed the walk
GRAPH_BONUS, HOP_DECAY, HOPS = 0.15, 0.7, 2  # tuned on the multi-hop fixture (bench/graphrag.py)
MODES = ("local", "global", "drift", "hybrid")
SYSTEM = "You answer questions from numbered sources and cite them."
ANSWER = ("{graph}Sources:\n{sources}\n\nAnswer the question in one or two sentences using the sources above. Cite the "
          "sources you used, like [1].\nQuestion: {question}")
MAP = ("Reports:\n{reports}\n\nQuestion: {question}\n\nList up to 3 points from the reports that help answer the "
       "question, each with the number of its report and a score from 0 (no help) to 100 (answers it).")
PRIMER = ("Reports:\n{reports}\n\nQuestion: {question}\n\nGive a first short answer from the reports, and up to 3 "
          "follow-up questions about specific entities that would complete it.")
NOT_FOUND = "The knowledge graph holds nothing that answers this."


@dataclass(slots=True)
class GraphAnswer:
    """An answer with numbered `sources` (chunk and report hits), the `citations` it kept, why each
    source was in the context (`reasons`, by hit id) and what the query cost."""

    question: str
    mode: str
    answer: str
    sources: list[Hit]
    citations: list[dict] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)

    def why(self, n: int) -> str:
        """Why source `n` (as cited, `[n]`) was in the answer's context."""
        if not isinstance(n, int) or not 1 <= n <= len(self.sources):
            raise ValueError(f"this answer has sources 1 to {len(self.sources)}; got {n!r}")
        hit = self.sources[n - 1]
        return f"[{n}] {hit.source}: {self.reasons.get(hit.id, 'retrieved for the question')}"

    def __str__(self) -> str:
        cited = {c["n"] for c in self.citations}
        lines = [self.answer, ""] + [f"[{n}] {hit.source}" + (f" ({hit.metadata['title']})" if "title" in hit.metadata
                                                               else "") for n, hit in enumerate(self.sources, 1)
                                     if n in cited]
        return "\n".join(lines).strip()


class _Context:
    """What a query gathers: sources in order, with a reason each, graph notes for the prompt and
    the entities the question matched (key -> similarity, best first)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.reasons: dict[str, str] = {}
        self.notes: list[str] = []
        self.matched: dict[str, float] = {}

    def add(self, hit: Hit, reason: str) -> None:
        if hit.id not in self.reasons:
            self.hits.append(hit)
            self.reasons[hit.id] = reason


def match_entities(index, question: str, vector: np.ndarray, k: int) -> dict[str, float]:
    """Entity keys near the question (cosine similarity of name + description), and those whose
    name the question spells out (similarity 1)."""
    found: dict[str, float] = {}
    count = index.entity_collection.count()
    if count:
        got = index.entity_collection.query(query_embeddings=[vector], n_results=min(k, count), include=["metadatas",
                                                                                                         "distances"])
        for meta, distance in zip(got["metadatas"][0], got["distances"][0]):
            if meta["key"] in index.graph:
                found[meta["key"]] = 1.0 - float(distance)
    spelled = f" {normalize(question)} "
    literal = [key for key in index.graph if len(key) > 2 and f" {key} " in spelled]
    for key in literal:  # "Orlan" does not count inside "Orlan Trade Fair"
        if not any(key != other and f" {key} " in f" {other} " for other in literal):
            found[key] = 1.0
    return dict(sorted(found.items(), key=lambda item: -item[1])[:k])


def rank_chunks(index, question: str, k: int, context: _Context | None = None) -> list[Hit]:
    """The `k` chunks best for the question: dense similarity to it, plus a bonus for every chunk
    the graph links to the question's entities — a chunk naming one of them (hop 0), a chunk
    naming an entity those chunks name (hop 1), and so on, the bonus shrinking with each hop.
    So the document that answers the second half of a multi-hop question, which never names
    what the question names, beats text that merely resembles the question."""
    vector = np.asarray(index.kb.embedder.embed([question])[0], dtype=np.float32)
    matched = {key: s for key, s in match_entities(index, question, vector, k=8).items() if s >= MIN_SIMILARITY}
    if context is not None:
        context.matched = matched
    paths = _paths(index, matched)
    scores = {hit.id: hit.score for hit in index.kb.search(question, k=min(50, max(index.kb.count(), 1)), mode="dense")}
    missing = [chunk for chunk in paths if chunk not in scores]
    if missing:
        got = index.kb.collection.get(ids=missing, include=["embeddings"])
        for chunk, embedding in zip(got["ids"], got["embeddings"]):
            embedding = np.asarray(embedding, dtype=np.float32)
            scores[chunk] = float(embedding @ vector / max(np.linalg.norm(embedding) * np.linalg.norm(vector), 1e-12))
    for chunk, (bonus, _) in paths.items():
        scores[chunk] = scores.get(chunk, 0.0) + bonus
    best = sorted(scores, key=lambda c: -scores[c])[:k]
    if not best:
        return []
    got = index.kb.collection.get(ids=best, include=["documents", "metadatas"])
    found = {i: (text, meta) for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"])}
    hits = [_hit(chunk, *found[chunk], scores[chunk]) for chunk in best if chunk in found]
    if context is not None:
        for key in list(matched)[:5]:
            node = index.graph.nodes[key]
            context.notes.append(f"{node['name']} ({node['type']}): {node['description'][:200]}")
        for hit in hits:
            context.add(hit, paths[hit.id][1] if hit.id in paths else "close to the question in meaning")
    return hits


def _paths(index, matched: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Chunk id -> (graph bonus, how the graph reaches it) for chunks within HOPS of the matched
    entities: hop by hop, the chunks naming the frontier entities, then the entities they name."""
    graph, mentions = index.graph, index.mentions
    found: dict[str, tuple[float, str]] = {}
    frontier = {key: (similarity, f"{graph.nodes[key]['name']!r} (matched by the question, similarity "
                                  f"{similarity:.2f})") for key, similarity in matched.items()}
    seen = set(frontier)
    for hop in range(HOPS):
        following: dict[str, tuple[float, str]] = {}
        for key, (similarity, chain) in sorted(frontier.items(), key=lambda item: (-item[1][0], item[0])):
            bonus = GRAPH_BONUS * similarity * HOP_DECAY ** hop
            for chunk in graph.nodes[key]["chunks"]:
                if chunk in found:
                    continue
                found[chunk] = (bonus, f"names {chain}")
                for other in sorted(mentions.get(chunk, ())):
                    if other not in seen:
                        seen.add(other)
                        following[other] = (similarity, f"{graph.nodes[other]['name']!r}, which appears beside "
                                                        f"{chain}")
        frontier = following
    return found


def retrieve(index, question: str, *, k: int = 5, mode: str = "local", context: _Context | None = None) -> list[Hit]:
    """The chunks a `local` or `hybrid` query puts before the model (into `context`, with reasons)."""
    _check(question, mode, ("local", "hybrid"))
    if mode == "local":
        return rank_chunks(index, question, k, context)
    found = _Context()
    graph_hits = rank_chunks(index, question, max(k, 20), found)
    hits = reciprocal_rank_fusion([graph_hits, index.kb.search(question, k=max(k, 20))])[:k]
    if context is not None:
        context.notes += found.notes
        context.matched = found.matched
        for hit in hits:
            context.add(hit, found.reasons.get(hit.id, "found by the knowledge base's hybrid search") + " (fused)")
    return hits


def report_hit(report: dict) -> Hit:
    findings = " ".join(f["summary"] for f in report["findings"])
    return Hit(report["key"], f"{report['title']}: {report['summary']} {findings}".strip(),
               f"report of community {report['community']}", float(report["rating"]),
               {"kind": "report", "title": report["title"], "community": report["community"],
                "level": report["level"]})


def _community_reports(index, keys: list[str], limit: int) -> list[tuple[dict, str]]:
    """The reports of the deepest communities holding `keys`, best rated first."""
    by_community = {r["community"]: r for r in index.reports}
    chosen: dict[int, str] = {}
    for key in keys:
        for community in reversed(index.graph.nodes[key].get("communities", [])):
            if community in by_community:
                chosen.setdefault(community, index.graph.nodes[key]["name"])
                break
    ranked = sorted(chosen, key=lambda c: -by_community[c]["rating"])[:limit]
    return [(by_community[c], chosen[c]) for c in ranked]


async def answer(index, question: str, *, mode: str = "local", k: int = 4, level: int = 0,
                 follow_ups: int = 3) -> GraphAnswer:
    """Answer `question` in `mode` (see the module docstring)."""
    _check(question, mode, MODES)
    if not isinstance(k, int) or not 1 <= k <= 50:
        raise ValueError("k must be an integer in [1, 50]")
    meter = Meter(lambda: index.model)
    if mode == "global":
        return await _global(index, question, level, meter)
    if mode == "drift":
        return await _drift(index, question, k, follow_ups, meter)
    return await _answer(question, mode, await asyncio.to_thread(_local_context, index, question, k, mode), meter)


def _local_context(index, question: str, k: int, mode: str) -> _Context:
    """The chunks of a local or hybrid query, then the reports of the communities of its entities."""
    context = _Context()
    retrieve(index, question, k=k, mode=mode, context=context)
    for report, via in _community_reports(index, list(context.matched)[:4], limit=2):
        context.add(report_hit(report), f"report of community {report['community']}, which holds {via!r}")
    return context


async def _answer(question: str, mode: str, context: _Context, meter: Meter, notes: str = "") -> GraphAnswer:
    if not context.hits:
        return GraphAnswer(question, mode, NOT_FOUND, [], cost=meter.cost)
    graph = "".join(f"{line}\n" for line in [*context.notes, notes] if line)
    sources = "\n\n".join(f"[{n}] {hit.text}" for n, hit in enumerate(context.hits, 1))
    reply = await meter.text("answer", [ChatMessage(role="system", content=SYSTEM), ChatMessage(
        role="user", content=ANSWER.format(graph=f"Graph:\n{graph}\n" if graph else "", sources=sources,
                                           question=question))])
    text, citations, _ = check_citations(reply, context.hits)
    for citation in citations:
        hit = context.hits[citation["n"] - 1]
        citation.update(kind=hit.metadata.get("kind", "chunk"), id=hit.id)
    return GraphAnswer(question, mode, text, context.hits, citations, context.reasons, meter.cost)


async def _global(index, question: str, level: int, meter: Meter) -> GraphAnswer:
    reports = sorted((r for r in index.reports if r["level"] == level), key=lambda r: -r["rating"])
    if not reports:
        return GraphAnswer(question, "global", NOT_FOUND, [], cost=meter.cost)
    hits = {r["key"]: report_hit(r) for r in reports}
    batches, batch, size = [], [], 0
    for report in reports:
        text = hits[report["key"]].text
        if batch and size + len(text) > 2500:
            batches.append(batch)
            batch, size = [], 0
        batch.append(report)
        size += len(text)
    batches.append(batch)
    points = []
    for batch in batches:
        listing = "\n".join(f"[{n}] {hits[r['key']].text}" for n, r in enumerate(batch, 1))
        try:
            mapped = await meter.structured("map", MapAnswer, [ChatMessage(role="user", content=MAP.format(
                reports=listing, question=question))])
        except ValueError:
            continue
        points += [(p.score, p.description, batch[p.report - 1]) for p in mapped.points
                   if p.score > 0 and p.report <= len(batch)]
    context = _Context()
    lines = []
    for score, description, report in sorted(points, key=lambda p: -p[0])[:6]:
        context.add(hits[report["key"]], f"report of community {report['community']} (level {level}): a map step "
                                        f"scored its point {score}/100")
        lines.append(f"- {description} [{[h.id for h in context.hits].index(report['key']) + 1}]")
    return await _answer(question, "global", context, meter, "Points:\n" + "\n".join(lines) if lines else "")


async def _drift(index, question: str, k: int, follow_ups: int, meter: Meter) -> GraphAnswer:
    context = _Context()
    primed = await asyncio.to_thread(_closest_reports, index, question, 3)
    if not primed:
        return GraphAnswer(question, "drift", NOT_FOUND, [], cost=meter.cost)
    listing = "\n".join(f"[{n}] {report_hit(r).text}" for n, (r, _) in enumerate(primed, 1))
    for report, similarity in primed:
        context.add(report_hit(report), f"report of community {report['community']}, similarity "
                                        f"{similarity:.2f} to the question (DRIFT primer)")
    try:
        primer = await meter.structured("primer", Primer, [ChatMessage(role="user", content=PRIMER.format(
            reports=listing, question=question))])
        first, questions = primer.answer, primer.follow_ups[:follow_ups]
    except ValueError:
        first, questions = "", [question]
    notes = [f"First answer: {first}"] if first else []
    for follow_up in questions:
        local = _Context()
        await asyncio.to_thread(rank_chunks, index, follow_up, max(1, k // 2), local)
        for hit in local.hits:
            context.add(hit, f"follow-up {follow_up!r}: {local.reasons[hit.id]}")
        if local.hits:
            found = await _answer(follow_up, "local", local, meter)
            notes.append(f"{follow_up} {_MARKER.sub('', found.answer).strip()}")
    return await _answer(question, "drift", context, meter, "\n".join(notes))


def _closest_reports(index, question: str, n: int) -> list[tuple[dict, float]]:
    """The `n` reports nearest the question, with their similarity."""
    count = index.report_collection.count()
    if not count:
        return []
    vector = index.kb.embedder.embed([question])[0]
    got = index.report_collection.query(query_embeddings=[vector], n_results=min(n, count), include=["distances"])
    by_key = {r["key"]: r for r in index.reports}
    return [(by_key[key], 1.0 - float(d)) for key, d in zip(got["ids"][0], got["distances"][0]) if key in by_key]


def _check(question: str, mode: str, modes: tuple[str, ...]) -> None:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    if mode not in modes:
        raise ValueError(f"mode must be one of {', '.join(modes)}; got {mode!r}")
