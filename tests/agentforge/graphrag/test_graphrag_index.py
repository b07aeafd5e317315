"""The whole pipeline on a scripted model: indexing with both methods, incremental add / edit /
delete (nothing that describes a deleted document survives), budgets that stop and resume, what
is stored where, and bad input (an empty corpus, a document with no entities)."""

from __future__ import annotations

import json
from collections import Counter

import networkx as nx
import pytest
from _graphrag_helpers import graphrag_model, kinds

from agentforge.rag import KnowledgeBase
from agentforge.rag.graphrag import Budget, GraphIndex

DOCS = {
    "zentrix.md": "Zentrix Labs is headquartered in Orlan. Mara Quell founded Zentrix Labs in 2011.",
    "orlan.md": "Orlan is a river city. Its mayor is Renata Szabo, who met Mara Quell in Orlan.",
    "ferry.md": "Halvard Shipping runs the Tidewalker Ferry. Tobin Vashti founded Halvard Shipping.",
}


@pytest.fixture
def kb(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    kb = KnowledgeBase("graph-test", path=tmp_path / "kb", embedder=embedder)
    kb.ingest(folder)
    kb.folder = folder
    return kb


def test_llm_indexing_builds_graph_communities_reports_and_embeddings(kb):
    model = graphrag_model()
    index = GraphIndex(kb, model, method="llm")
    estimate = index.estimate()
    result = index.index()
    assert result.complete and result.stopped is None and result.chunks == 3 and result.extracted == 3
    assert Counter(kinds(model)) == {"extract": 3, "report": result.reports - _extractive(index)}
    names = sorted(d["name"] for _, d in index.graph.nodes(data=True))
    assert names == ["Halvard Shipping", "Mara Quell", "Renata Szabo", "Tidewalker Ferry", "Tobin Vashti",
                     "Zentrix Labs"]
    assert index.graph.nodes["zentrix labs"]["type"] == "organization"
    assert index.graph.nodes["mara quell"]["sources"] == sorted(str(kb.folder / n) for n in ("orlan.md", "zentrix.md"))
    assert result.entities == 6 and result.communities == len(index.communities) == len(index.reports)
    assert {r["community"] for r in index.reports} == {c["id"] for c in index.communities}
    # cost: the estimate was made before, the measurement after, per stage
    assert estimate.estimated and estimate.stages["extract"].calls == 3 and estimate.stages["extract"].prompt_tokens > 0
    assert result.estimate.stages["extract"].calls == 3
    measured = result.cost.stages["extract"]
    assert not result.cost.estimated and measured.calls == 3 and measured.prompt_tokens > 0 and measured.seconds > 0
    # stored: node-link JSON, GraphML (Gephi reads it), reports, and embeddings in Chroma
    folder = kb.path / "graph"
    assert json.loads((folder / "graph.json").read_text())["communities"] == index.communities
    graphml = nx.read_graphml(folder / "graph.graphml")
    assert graphml.nodes["zentrix labs"]["name"] == "Zentrix Labs"
    assert json.loads(graphml.nodes["zentrix labs"]["chunks"]) == index.graph.nodes["zentrix labs"]["chunks"]
    assert index.entity_collection.count() == 6 and index.report_collection.count() == len(index.reports)
    again = GraphIndex(kb, model)  # reopened: the method and the graph come from disk
    assert again.method == "llm" and nx.utils.graphs_equal(again.graph, index.graph) and again.reports == index.reports
    assert again.index().extracted == 0 and Counter(kinds(model))["extract"] == 3  # nothing redone


def _extractive(index) -> int:
    return sum(r["written_by"] == "extractive" for r in index.reports)


def test_incremental_add_edit_delete_touch_only_what_changed(kb):
    model = graphrag_model()
    index = GraphIndex(kb, model, method="llm")
    index.index()
    reports_before = {r["key"] for r in index.reports}
    ferry_reports = {r["key"] for r in index.reports if "tobin vashti" in r["entities"]}
    mara_reports = {r["key"] for r in index.reports if "mara quell" in r["entities"]}
    (kb.folder / "bank.md").write_text("Corvane Bank is chaired by Liora Pemberton. Liora Pemberton lives in Orlan.")
    (kb.folder / "praise.md").write_text("Renata Szabo praised Zentrix Labs.")  # a new relationship in Mara's community
    kb.ingest(kb.folder)
    calls = len(model.calls)
    added = index.index()
    assert added.extracted == 2 and kinds(model)[calls:].count("extract") == 2
    assert "liora pemberton" in index.graph and index.graph.has_edge("renata szabo", "zentrix labs")
    after = {r["key"] for r in index.reports}
    assert ferry_reports <= after  # an untouched community keeps its report, no call
    assert not mara_reports & after  # the changed one is written again
    assert after - reports_before - {r["key"] for r in index.reports if "mara quell" in r["entities"]}

    (kb.folder / "ferry.md").write_text("Halvard Shipping runs the Seawolf Ferry. Tobin Vashti founded Halvard Shipping.")
    kb.ingest(kb.folder)
    edited = index.index()
    assert edited.extracted == 1 and edited.removed == 1
    assert "seawolf ferry" in index.graph and "tidewalker ferry" not in index.graph

    (kb.folder / "zentrix.md").unlink()
    (kb.folder / "praise.md").unlink()
    kb.ingest(kb.folder)
    deleted = index.index()
    assert deleted.removed == 2 and deleted.extracted == 0
    assert "zentrix labs" not in index.graph and "mara quell" in index.graph  # orlan.md still names her
    stored = " ".join(p.read_text() for p in (kb.path / "graph").glob("*.json")) + (kb.path / "graph" /
                                                                                     "graph.graphml").read_text()
    assert "Zentrix" not in stored and "Tidewalker" not in stored  # nothing describes what is gone
    assert not any("Zentrix" in d for d in index.entity_collection.get(include=["documents"])["documents"])
    assert not any("Zentrix" in d for d in index.report_collection.get(include=["documents"])["documents"])
    zentrix_chunk = str(kb.folder / "zentrix.md")
    assert all(zentrix_chunk not in data["sources"] for _, data in index.graph.nodes(data=True))


def test_a_budget_stops_cleanly_and_the_next_run_resumes_without_repeating(kb):
    model = graphrag_model()
    index = GraphIndex(kb, model, method="llm", concurrency=1)
    stopped = index.index(budget=Budget(max_calls=2))
    assert not stopped.complete and stopped.stopped == "max_calls=2" and stopped.cost.total.calls == 2
    assert stopped.extracted == 2 and len(model.calls) == 2
    assert index.graph.number_of_nodes() > 0  # the graph of what was extracted, consistent and usable
    resumed = index.index()
    assert resumed.complete and resumed.extracted == 1
    assert Counter(kinds(model))["extract"] == 3  # each chunk extracted exactly once


def test_the_fast_method_makes_no_extraction_call_and_the_method_is_per_knowledge_base(kb):
    model = graphrag_model()
    index = GraphIndex(kb, model, method="fast")
    assert index.estimate().stages.get("extract") is None
    result = index.index()
    assert result.cost.stages["extract"].calls == 0 and set(kinds(model)) <= {"report"}
    assert {"zentrix labs", "mara quell", "orlan", "halvard shipping"} <= set(index.graph)
    with pytest.raises(ValueError, match="built with the 'fast' method"):
        GraphIndex(kb, model, method="llm")
    index.reset()
    assert GraphIndex(kb, model, method="llm").method == "llm"


def test_an_empty_corpus_and_a_document_without_entities_are_reported_not_fatal(tmp_path, embedder):
    kb = KnowledgeBase("empty", path=tmp_path / "kb", embedder=embedder)
    index = GraphIndex(kb, graphrag_model(), method="llm")
    result = index.index()
    assert result.complete and result.chunks == result.entities == result.communities == 0
    assert index.query("anything?").answer.startswith("The knowledge graph holds nothing")
    (tmp_path / "plain.md").write_text("it rained all day and nobody came.")
    kb.ingest(tmp_path / "plain.md")
    result = index.index()
    assert result.entities == 0 and result.warnings == [f"no entities found in 1 file(s): {tmp_path / 'plain.md'}"]


def test_a_broken_extraction_reply_is_kept_empty_and_reported(kb):
    model = graphrag_model()
    model.replies[0] = "{not json"
    index = GraphIndex(kb, model, method="llm", concurrency=1)
    result = index.index()
    assert result.complete and any(w.startswith("extraction failed for a chunk of") for w in result.warnings)
    assert result.cost.stages["extract"].failed == 1


@pytest.mark.parametrize("bad, message", [({"method": "magic"}, "method must be one of"),
                                          ({"gleanings": 9}, "gleanings"), ({"max_cluster_size": 1}, "max_cluster"),
                                          ({"entity_types": ()}, "entity_types"), ({"merge_similarity": 0}, "merge")])
def test_settings_are_validated(kb, bad, message):
    with pytest.raises(ValueError, match=message):
        GraphIndex(kb, graphrag_model(), **bad)
