"""Each indexing stage on its own, deterministic: extraction parsing and gleaning on a scripted
model, the NLP extractor, entity resolution and merged descriptions, the community hierarchy,
report generation (and its fallbacks), cost accounting and budgets."""

from __future__ import annotations

import asyncio
import json

import networkx as nx
import pytest
from _graphrag_helpers import graphrag_model, kinds

from agentforge.agents import ScriptedChatModel
from agentforge.rag.graphrag import Budget, Cost
from agentforge.rag.graphrag._communities import detect
from agentforge.rag.graphrag._extract import extract_llm, extract_nlp, normalize
from agentforge.rag.graphrag._graph import build_graph
from agentforge.rag.graphrag._reports import content_key, write_report
from agentforge.rag.graphrag.cost import BudgetExceeded, Meter

TYPES = ("person", "organization", "place")


def meter(model, budget=None) -> Meter:
    return Meter(lambda: model, budget)


def test_extraction_parses_cleans_and_adds_unlisted_relationship_ends():
    reply = {"entities": [{"name": "  Mara Quell. ", "type": "person", "description": "A physicist."},
                          {"name": "Zentrix Labs", "type": "organization", "description": "A lab."}],
             "relationships": [{"source": "Mara Quell", "target": "Zentrix Labs", "description": "founded",
                                "strength": 9},
                               {"source": "Zentrix Labs", "target": "the zentrix labs", "description": "self",
                                "strength": 3},
                               {"source": "Zentrix Labs", "target": "Orlan", "description": "based in",
                                "strength": 7}]}
    model = ScriptedChatModel([json.dumps(reply)])
    record = asyncio.run(extract_llm(meter(model), "Mara Quell founded Zentrix Labs in Orlan.", TYPES, 0))
    assert [e["name"] for e in record["entities"]] == ["Mara Quell", "Zentrix Labs", "Orlan"]
    assert record["entities"][2]["type"] == ""  # named only by a relationship: resolution types it
    assert [(r["source"], r["target"]) for r in record["relationships"]] == [("Mara Quell", "Zentrix Labs"),
                                                                           ("Zentrix Labs", "Orlan")]
    schema = model.calls[0]["response_format"]
    assert schema["$defs"]["ExtractedEntity"]["properties"]["type"]["enum"] == list(TYPES)


def test_gleaning_asks_for_missed_entities_and_stops_when_told():
    first = {"entities": [{"name": "Mara Quell", "type": "person", "description": "d"}], "relationships": []}
    more = {"entities": [{"name": "Orlan", "type": "place", "description": "a city"}], "relationships": []}
    model = ScriptedChatModel([json.dumps(first), json.dumps(more), '{"more": false}'])
    record = asyncio.run(extract_llm(meter(model), "text", TYPES, 3))
    assert [e["name"] for e in record["entities"]] == ["Mara Quell", "Orlan"]
    assert kinds(model) == ["extract", "glean", "loop"]  # the loop check said no: no third pass
    assert model.calls[1]["messages"][-2].role == "assistant"  # the model sees what it already listed


def test_a_reply_that_breaks_the_schema_is_a_clear_error():
    model = ScriptedChatModel(['{"entities": [{"name": "X"}]}'])
    with pytest.raises(ValueError, match="extract reply does not fit its schema"):
        asyncio.run(extract_llm(meter(model), "text", TYPES, 0))


def test_nlp_extraction_finds_names_and_compounds_without_a_model():
    record = extract_nlp("However, Mara Quell founded Zentrix Labs in the Bank of Orlan district. "
                         "Today Zentrix Labs builds quantum sensor arrays. About 4,000 people are employed there.")
    names = [e["name"] for e in record["entities"]]
    assert names == ["Mara Quell", "Zentrix Labs", "Bank of Orlan", "quantum sensor arrays"]
    pair = next(r for r in record["relationships"] if {r["source"], r["target"]} == {"Mara Quell", "Zentrix Labs"})
    assert pair["description"].startswith("However, Mara Quell founded") and pair["strength"] == 3
    assert extract_nlp("it was raining and nothing happened.") == {"entities": [], "relationships": []}


def test_normalized_names_match_case_punctuation_articles_and_company_suffixes():
    assert normalize("The Zentrix Labs, Inc.") == normalize("zentrix labs") == "zentrix labs"
    assert normalize("Ångström Corp") == "angstrom"


def _record(*entities, relationships=()):
    return {"entities": [{"name": n, "type": t, "description": d} for n, t, d in entities],
            "relationships": [{"source": a, "target": b, "description": d, "strength": s}
                              for a, b, d, s in relationships]}


def test_resolution_merges_spellings_and_surnames_and_keeps_one_type(embedder):
    extractions = {
        "c1": _record(("Zentrix Labs", "organization", "A sensor maker."), ("Mara Quell", "person", "A physicist."),
                      ("Quell", "person", "She founded it."),
                      relationships=[("Mara Quell", "Zentrix Labs", "founded", 8)]),
        "c2": _record(("Zentrix Lab", "organization", "Based in Orlan."), ("Orlan", "place", "A river city."),
                      relationships=[("Zentrix Lab", "Orlan", "headquartered in", 6)]),
        "c3": _record(("Orlan", "organization", "A river city."), ("Quell", "person", "Another Quell."),
                      relationships=[("Zentrix Labs", "Orlan", "based in", 4)]),
        "c4": _record(("Orlan", "place", "The fair's host.")),
    }
    graph, warnings = build_graph(extractions, {c: f"/docs/{c}.md" for c in extractions}, embedder.embed)
    assert sorted(graph.nodes[n]["name"] for n in graph) == ["Mara Quell", "Orlan", "Quell", "Zentrix Labs"]
    zentrix = graph.nodes["zentrix lab"]  # "Zentrix Lab" and "Zentrix Labs": one entity, the more frequent name
    assert zentrix["description"] == "A sensor maker. Based in Orlan." and zentrix["chunks"] == ["c1", "c2"]
    assert graph.nodes["mara quell"]["chunks"] == ["c1"]  # "Quell" in c1 is Mara Quell; "Quell" in c3 is not
    assert graph.nodes["quell"]["chunks"] == ["c3"]
    orlan = graph.nodes["orlan"]
    assert orlan["type"] == "place" and orlan["types"] == ["organization", "place"]
    assert warnings == ["entity 'Orlan' was named with types organization, place; kept 'place'"]
    edge = graph.edges["zentrix lab", "orlan"]
    assert edge["weight"] == 10 and edge["description"] == "headquartered in. based in." and edge["chunks"] == ["c2",
                                                                                                             "c3"]


def test_concepts_seen_once_are_pruned_and_names_are_kept(embedder):
    extractions = {"c1": _record(("quantum sensor", "concept", "x"), ("Orlan", "name", "y"),
                                 relationships=[("quantum sensor", "Orlan", "z", 1)]),
                   "c2": _record(("river barge", "concept", "x")), "c3": _record(("river barge", "concept", "x"))}
    graph, _ = build_graph(extractions, {}, embedder.embed)
    assert sorted(graph) == ["orlan", "river barge"] and graph.number_of_edges() == 0


def test_communities_are_hierarchical_and_isolated_entities_get_their_own():
    graph = nx.relabel_nodes(nx.karate_club_graph(), str)
    graph.add_node("alone")
    communities = detect(graph, max_cluster_size=6)
    top = [c for c in communities if c.level == 0]
    assert sorted(n for c in top for n in c.entities) == sorted(graph)  # level 0 partitions every entity
    assert any(c.level == 1 for c in communities)
    for c in communities:
        if c.parent is not None:
            parent = communities[c.parent]
            assert parent.level == c.level - 1 and set(c.entities) <= set(parent.entities) and c.id in parent.children
        if not c.children:
            assert len(c.entities) <= 6 or c.level == 0 and len(c.entities) <= 6
    assert [c.entities for c in communities if "alone" in c.entities] == [["alone"]]
    assert detect(graph, max_cluster_size=6) == communities  # seeded: the same every run
    assert detect(nx.Graph()) == []


def _small_graph():
    graph = nx.Graph()
    for key, name, kind in [("mara quell", "Mara Quell", "person"), ("zentrix labs", "Zentrix Labs", "organization"),
                            ("hermit", "Hermit", "person")]:
        graph.add_node(key, name=name, type=kind, description=f"{name} is here.", chunks=[f"c-{key}"])
    graph.add_edge("mara quell", "zentrix labs", weight=8.0, description="Mara Quell founded Zentrix Labs.",
                   chunks=["c-mara quell"])
    return graph


def test_reports_are_structured_reference_real_entities_and_are_keyed_by_content():
    graph = _small_graph()
    single, pair = sorted(detect(graph), key=lambda c: len(c.entities))
    model = graphrag_model()
    report = asyncio.run(write_report(meter(model), graph, pair, content_key(graph, pair)))
    assert report["written_by"] == "llm" and report["title"] == "Community around Mara Quell"
    assert report["rating"] == 6.5 and report["findings"][0]["entities"] == ["mara quell"]  # reference 99 dropped
    assert report["chunks"] == ["c-mara quell", "c-zentrix labs"] and report["entities"] == pair.entities
    lonely = asyncio.run(write_report(meter(model), graph, single, content_key(graph, single)))
    assert lonely["written_by"] == "extractive" and lonely["summary"] == "Hermit is here."
    assert len(model.calls) == 1  # a community of one costs no call
    key = content_key(graph, pair)
    graph.nodes["zentrix labs"]["description"] = "Changed."
    assert content_key(graph, pair) != key


def test_a_report_reply_that_fails_falls_back_to_the_descriptions():
    graph = _small_graph()
    pair = max(detect(graph), key=lambda c: len(c.entities))
    report = asyncio.run(write_report(meter(ScriptedChatModel(["not json"])), graph, pair, "k"))
    assert report["written_by"] == "extractive" and "not JSON" in report["error"]
    assert report["title"] == "Mara Quell, Zentrix Labs"


def test_the_meter_counts_calls_tokens_and_time_per_stage_and_stops_at_the_budget():
    model = graphrag_model()
    m = meter(model, Budget(max_calls=2))
    asyncio.run(m.text("answer", ["hello there"]))
    asyncio.run(m.text("answer", ["hello"]))
    with pytest.raises(BudgetExceeded):
        asyncio.run(m.text("answer", ["again"]))
    cost = m.cost.stage("answer")
    assert cost.calls == 2 and cost.prompt_tokens == 3 and cost.output_tokens > 0 and cost.seconds > 0
    assert m.stopped == "max_calls=2" and len(model.calls) == 2
    assert "answer" in m.cost.table() and "total" in m.cost.table()
    tokens = meter(model, Budget(max_tokens=5))
    asyncio.run(tokens.text("answer", ["one two three four five six"]))
    with pytest.raises(BudgetExceeded):
        asyncio.run(tokens.text("answer", ["x"]))
    assert Cost().total.calls == 0


@pytest.mark.parametrize("bad", [{"max_calls": 0}, {"max_tokens": -1}, {"max_seconds": "soon"}])
def test_budgets_are_validated(bad):
    with pytest.raises(ValueError):
        Budget(**bad)


def test_one_answer_naming_an_entity_twice_with_different_types_gives_one_entity(embedder):
    reply = {"entities": [{"name": "Orlan", "type": "place", "description": "A river city."},
                          {"name": "ORLAN", "type": "organization", "description": "The city council."},
                          {"name": "Renata Szabo", "type": "person", "description": "Its mayor."}],
             "relationships": [{"source": "Renata Szabo", "target": "Orlan", "description": "mayor of", "strength": 8}]}
    record = asyncio.run(extract_llm(meter(ScriptedChatModel([json.dumps(reply)])), "text", TYPES, 0))
    graph, warnings = build_graph({"c1": record}, {"c1": "/docs/orlan.md"}, embedder.embed)
    assert sorted(graph) == ["orlan", "renata szabo"] and graph.nodes["orlan"]["description"] == (
        "A river city. The city council.")
    assert graph.nodes["orlan"]["type"] == "place" and graph.nodes["orlan"]["types"] == ["organization", "place"]
    assert warnings == ["entity 'Orlan' was named with types organization, place; kept 'place'"]
