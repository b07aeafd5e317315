"""`GraphIndex`: a knowledge base's chunks as a knowledge graph — entities and relationships
extracted per chunk (by the model or by NLP), resolved into one `networkx` graph, grouped into
hierarchical communities with a report each — kept in step with the knowledge base, with the cost
of every run estimated before and measured after."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Annotated

import networkx as nx
from pydantic import Field

from agentforge.agents import ChatModel, as_chat_model
from agentforge.agents.model import run_sync
from agentforge.tools import Tool

from ..documents import Hit
from ..knowledge_base import KnowledgeBase
from . import _reports, search
from ._communities import detect
from ._extract import EXTRACT, SYSTEM, extract_llm, extract_nlp, normalize
from ._graph import build_graph
from ._store import GraphStore, load, sync_collection
from .cost import Budget, BudgetExceeded, Cost, Meter
from .search import GraphAnswer
from .view import graph_folder

METHODS = ("llm", "fast")
DEFAULT_TYPES = ("person", "organization", "place", "event", "product", "concept")
_TOOL_HELP = {
    "local": "Answer a question about specific entities of the '{kb}' documents from its knowledge graph.",
    "global": "Answer a question about the main themes across all of the '{kb}' documents (community reports).",
    "drift": "Answer a broad question about the '{kb}' documents: themes first, then the entities they involve.",
    "hybrid": "Answer a question from the '{kb}' documents, by knowledge graph and text search together."}
# what one reply is expected to cost, in output tokens, for estimates before a run (SmolLM2-135M on the
# fixture corpus wrote ~450 per extraction and ~200 per report: docs/benchmarks.md#graphrag)
_EXPECTED_OUTPUT = {"extract": 450, "glean": 200, "reports": 260}


@dataclass(slots=True)
class IndexResult:
    """What an indexing run did and cost. `complete` is False when the budget stopped it
    (`stopped` says which limit); running `index()` again resumes."""

    complete: bool
    stopped: str | None
    cost: Cost
    estimate: Cost
    chunks: int = 0
    extracted: int = 0
    removed: int = 0
    entities: int = 0
    relationships: int = 0
    communities: int = 0
    reports: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class GraphIndex:
    """The knowledge graph of `kb`, built with `method` "llm" (the model extracts, under a schema)
    or "fast" (NLP extraction, no LLM call); community reports are the model's either way.

    >>> graph = GraphIndex(kb, "smollm2-135m", method="fast")
    >>> graph.estimate().table()            # what index() will cost
    >>> result = graph.index(budget=Budget(max_calls=200))
    >>> graph.query("How is Zentrix connected to Orlan?", mode="local").answer
    """

    def __init__(self, kb: KnowledgeBase, model: ChatModel | str | None = None, *, method: str | None = None,
                 entity_types: tuple[str, ...] = DEFAULT_TYPES, gleanings: int = 0, max_cluster_size: int = 10,
                 min_report_size: int = 2, merge_similarity: float = 0.9, concurrency: int = 4) -> None:
        if not isinstance(kb, KnowledgeBase):
            raise ValueError("kb must be a KnowledgeBase")
        if method is not None and method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        if not entity_types or not all(isinstance(t, str) and t.strip() for t in entity_types):
            raise ValueError("entity_types must be non-empty strings")
        if not isinstance(gleanings, int) or not 0 <= gleanings <= 5:
            raise ValueError("gleanings must be an integer in [0, 5]")
        if not isinstance(max_cluster_size, int) or max_cluster_size < 2:
            raise ValueError("max_cluster_size must be an integer >= 2")
        if not isinstance(min_report_size, int) or min_report_size < 1:
            raise ValueError("min_report_size must be a positive integer")
        if not 0 < merge_similarity <= 1:
            raise ValueError("merge_similarity must be in (0, 1]")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError("concurrency must be a positive integer")
        self.kb, self.entity_types, self.gleanings = kb, tuple(entity_types), gleanings
        self.max_cluster_size, self.min_report_size = max_cluster_size, min_report_size
        self.merge_similarity, self.concurrency = merge_similarity, concurrency
        self._model = model
        self.folder = graph_folder(kb.name, kb.path)
        self.store = GraphStore(self.folder)
        built_with = self.store.meta("method")
        if built_with and method and method != built_with and self.store.extracted_ids():
            raise ValueError(f"the graph of {kb.name!r} was built with the {built_with!r} method; reset() it "
                             f"(CLI: --rebuild) to index with {method!r}")
        self.method = method or built_with or "llm"
        self.graph, self.communities, self.reports = load(self.folder)
        self._mentions: tuple[nx.Graph | None, dict[str, list[str]]] = (None, {})
        client = kb._client
        self.entity_collection = client.get_or_create_collection(
            f"{kb._collection_name}-entities", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        self.report_collection = client.get_or_create_collection(
            f"{kb._collection_name}-reports", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})

    @property
    def model(self) -> ChatModel:
        """The chat model, made on first use (the default embedded model unless one was given)."""
        if not isinstance(self._model, ChatModel):
            from agentforge.engine import DEFAULT_MODEL

            self._model = as_chat_model(self._model or DEFAULT_MODEL)
        return self._model

    # --- indexing -------------------------------------------------------------------------

    def estimate(self) -> Cost:
        """The forecast cost of `index()` now: calls and prompt tokens counted from the chunks
        still to extract, output tokens and report counts from typical replies."""
        done = self.store.extracted_ids()
        return self._estimate([text for chunk_id, (text, _) in self._chunks().items() if chunk_id not in done])

    def _estimate(self, todo: list[str]) -> Cost:
        """The forecast for extracting the texts `todo` and reporting on what they add."""
        cost = Cost(estimated=True)
        if self.method == "llm" and todo:
            template = self._tokens(SYSTEM + EXTRACT.format(text="", types=", ".join(self.entity_types)))
            extract = cost.stage("extract")
            extract.calls = len(todo)
            extract.prompt_tokens = sum(template + self._tokens(text) for text in todo)
            extract.output_tokens = extract.calls * _EXPECTED_OUTPUT["extract"]
            if self.gleanings:
                glean = cost.stage("glean")
                glean.calls = len(todo) * (2 * self.gleanings - 1)
                glean.prompt_tokens = glean.calls * (extract.prompt_tokens // len(todo) + _EXPECTED_OUTPUT["extract"])
                glean.output_tokens = glean.calls * _EXPECTED_OUTPUT["glean"]
        # about one community report for every three new chunks, as measured on the test corpora
        reports = cost.stage("reports")
        reports.calls = -(-len(todo) // 3)
        reports.prompt_tokens = reports.calls * 600
        reports.output_tokens = reports.calls * _EXPECTED_OUTPUT["reports"]
        return cost

    def index(self, *, budget: Budget | None = None) -> IndexResult:
        """Bring the graph in step with the knowledge base (see `aindex`)."""
        return run_sync(self.aindex(budget=budget))

    async def aindex(self, *, budget: Budget | None = None) -> IndexResult:
        """Extract the chunks not yet extracted, forget those gone from the knowledge base, then
        rebuild the graph, its communities and the reports whose community changed. Within
        `budget` the run stops before its next LLM call; what is done is kept."""
        if budget is not None and not isinstance(budget, Budget):
            raise ValueError("budget must be a Budget")
        started = time.perf_counter()
        meter = Meter(lambda: self.model, budget, self.concurrency)
        chunks = self._chunks()
        done = self.store.extracted_ids()
        stale = [c for c in done if c not in chunks]
        todo = [c for c in chunks if c not in done]
        estimate = self._estimate([chunks[c][0] for c in todo])
        self.store.drop_extractions(stale)
        result = IndexResult(False, None, meter.cost, estimate, chunks=len(chunks), removed=len(stale))
        if self.method == "fast":
            with meter.timed("extract"):
                result.extracted = self._extract_fast({c: chunks[c] for c in todo})
        else:
            result.extracted = await self._extract(meter, {c: chunks[c] for c in todo}, result.warnings)
        with meter.timed("graph"):
            extractions = self.store.extractions()
            graph, warnings = build_graph(extractions, {c: chunks[c][1]["source"] for c in extractions},
                                          self.kb.embedder.embed, merge_similarity=self.merge_similarity)
            communities = detect(graph, max_cluster_size=self.max_cluster_size)
        result.warnings += warnings
        empty = sorted({chunks[c][1]["source"] for c, r in extractions.items() if not r["entities"]})
        if empty:
            result.warnings.append(f"no entities found in {len(empty)} file(s): {', '.join(empty[:5])}")
        reports = await self._reports(meter, graph, communities, result.warnings)
        with meter.timed("store"):
            _annotate(graph, communities)
            self.graph, self.communities, self.reports = graph, [c.as_dict() for c in communities], reports
            self.store.save(self.graph, self.communities, self.reports)
            self.store.set_meta("method", self.method)
            self._sync_embeddings()
        result.complete, result.stopped = meter.stopped is None, meter.stopped
        result.entities, result.relationships = graph.number_of_nodes(), graph.number_of_edges()
        result.communities, result.reports = len(communities), len(reports)
        result.seconds = time.perf_counter() - started
        return result

    def _extract_fast(self, todo: dict[str, tuple[str, dict]]) -> int:
        for chunk_id, (text, _) in todo.items():
            self.store.put_extraction(chunk_id, extract_nlp(text))
        return len(todo)

    async def _extract(self, meter: Meter, todo: dict[str, tuple[str, dict]], warnings: list[str]) -> int:
        async def one(chunk_id: str, text: str) -> bool:
            try:
                record = await extract_llm(meter, text, self.entity_types, self.gleanings)
            except BudgetExceeded:
                return False
            except ValueError as exc:  # a reply that broke its schema: kept as empty, reported
                record = {"entities": [], "relationships": [], "error": str(exc)[:300]}
                warnings.append(f"extraction failed for a chunk of {todo[chunk_id][1]['source']}: {exc}")
            self.store.put_extraction(chunk_id, record)
            return True

        return sum(await asyncio.gather(*(one(c, text) for c, (text, _) in todo.items())))

    async def _reports(self, meter: Meter, graph: nx.Graph, communities, warnings: list[str]) -> list[dict]:
        async def one(community) -> dict | None:
            key = _reports.content_key(graph, community)
            cached = self.store.cached_report(key)
            if cached is not None:
                return _reports.relocate(cached, graph, community)
            try:
                report = await _reports.write_report(meter, graph, community, key, min_size=self.min_report_size)
            except BudgetExceeded:
                return None
            if report["error"]:
                warnings.append(f"report of community {community.id} written from descriptions: {report['error']}")
            self.store.put_report(key, report)
            return report

        reports = [r for r in await asyncio.gather(*(one(c) for c in communities)) if r is not None]
        self.store.keep_reports({r["key"] for r in reports})
        return reports

    def _sync_embeddings(self) -> None:
        embed = self.kb.embedder.embed
        sync_collection(self.entity_collection, {
            _id(key): (f"{d['name']}: {d['description']}", {"key": key, "name": d["name"], "type": d["type"]})
            for key, d in self.graph.nodes(data=True)}, embed)
        sync_collection(self.report_collection, {
            r["key"]: (f"{r['title']}\n{r['summary']}", {"community": r["community"], "level": r["level"]})
            for r in self.reports}, embed)

    def reset(self) -> None:
        """Forget the graph and everything extracted (the knowledge base itself is untouched)."""
        self.store.clear()
        for collection in (self.entity_collection, self.report_collection):
            ids = collection.get(include=[])["ids"]
            if ids:
                collection.delete(ids=ids)
        self.graph, self.communities, self.reports = nx.Graph(), [], []

    @property
    def mentions(self) -> dict[str, list[str]]:
        """Chunk id -> the keys of the entities it names (derived from the graph, kept while it is)."""
        if self._mentions[0] is not self.graph:
            mentions: dict[str, list[str]] = {}
            for key, data in self.graph.nodes(data=True):
                for chunk in data["chunks"]:
                    mentions.setdefault(chunk, []).append(key)
            self._mentions = (self.graph, mentions)
        return self._mentions[1]

    def _chunks(self) -> dict[str, tuple[str, dict]]:
        got = self.kb.collection.get(include=["documents", "metadatas"])
        return {i: (text, meta) for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"])}

    def _tokens(self, text: str) -> int:
        return len(self.kb.splitter.tokenizer.encode(text, add_special_tokens=False))

    # --- questions ------------------------------------------------------------------------

    def query(self, question: str, *, mode: str = "local", k: int = 4, level: int = 0,
              follow_ups: int = 3) -> GraphAnswer:
        """An answer with cited chunks and reports: `mode` "local", "global" (map-reduce over the
        reports of communities at `level`), "drift" (up to `follow_ups` local follow-ups) or
        "hybrid" (graph and vector search fused); `k` chunks go into a local context."""
        return run_sync(self.aquery(question, mode=mode, k=k, level=level, follow_ups=follow_ups))

    async def aquery(self, question: str, *, mode: str = "local", k: int = 4, level: int = 0,
                     follow_ups: int = 3) -> GraphAnswer:
        return await search.answer(self, question, mode=mode, k=k, level=level, follow_ups=follow_ups)

    def retrieve(self, question: str, *, k: int = 5, mode: str = "local") -> list[Hit]:
        """The `k` chunks a "local" or "hybrid" query gives the model, best first."""
        return search.retrieve(self, question, k=k, mode=mode)

    def as_tool(self, *, mode: str = "local", name: str | None = None, description: str | None = None) -> Tool:
        """An agent `Tool` that answers a question from the graph in `mode`, with its sources."""
        if mode not in search.MODES:
            raise ValueError(f"mode must be one of {', '.join(search.MODES)}; got {mode!r}")

        async def ask(question: Annotated[str, Field(min_length=1, max_length=500)]) -> str:
            return str(await self.aquery(question, mode=mode))

        return Tool(ask, name=name or f"graph_{mode}_{self.kb.name.replace('-', '_').replace('.', '_')}",
                    description=description or _TOOL_HELP[mode].format(kb=self.kb.name))

    # --- inspection -----------------------------------------------------------------------

    def entity(self, name: str) -> dict | None:
        """An entity by name (any spelling resolution accepts): its description, type, relationships,
        source chunks and the reports of its communities."""
        key = normalize(name)
        if key not in self.graph:
            return None
        data = dict(self.graph.nodes[key])
        data["relationships"] = [{"with": self.graph.nodes[n]["name"], **self.graph.edges[key, n]}
                                 for n in self.graph[key]]
        data["reports"] = [r for r in self.reports if key in r["entities"]]
        return data

    def export_graphml(self, path) -> None:
        """Copy the graph as GraphML (for Gephi, yEd, Cytoscape); list attributes are JSON strings."""
        import shutil

        shutil.copyfile(self.folder / "graph.graphml", path)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> GraphIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _annotate(graph: nx.Graph, communities) -> None:
    """Each entity's communities (top level first) and a layout position for the graph view."""
    for node in graph:
        graph.nodes[node]["communities"] = []
    for community in communities:
        for node in community.entities:
            graph.nodes[node]["communities"].append(community.id)
    if graph.number_of_nodes():
        positions = nx.spring_layout(graph, seed=7, iterations=60)
        for node, (x, y) in positions.items():
            graph.nodes[node]["x"], graph.nodes[node]["y"] = round(float(x), 4), round(float(y), 4)


def _id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]
