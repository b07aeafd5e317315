"""The four query modes on a scripted model — what goes into each context, which citations are
kept and why each source was there — and the multi-hop fixture: graph retrieval surfaces every
needed document more often than vector-only retrieval."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from _graphrag_corpus import QUESTIONS, all_needed_rate, write_corpus
from _graphrag_helpers import graphrag_model, kinds

from agentforge.rag import KnowledgeBase
from agentforge.rag.graphrag import GraphIndex

QUESTION = "Who is the mayor of the city where Zentrix Labs is headquartered?"


@pytest.fixture(scope="module")
def multihop(tmp_path_factory, embedder):
    folder = write_corpus(tmp_path_factory.mktemp("multihop"))
    kb = KnowledgeBase("multihop", path=tmp_path_factory.mktemp("kb"), embedder=embedder)
    kb.ingest(folder)
    model = graphrag_model()
    index = GraphIndex(kb, model, method="fast")
    assert index.index().complete
    return folder, kb, index, model


def test_graph_retrieval_finds_every_needed_document_more_often_than_vector_search(multihop):
    folder, kb, index, _ = multihop
    assert len(QUESTIONS) >= 40 and all(len(needs) >= 2 for _, _, needs in QUESTIONS)
    print(f"\nall needed documents retrieved, {len(QUESTIONS)} multi-hop questions:")
    for k in (3, 4, 5):
        dense = all_needed_rate(lambda q: kb.search(q, k=k, mode="dense"), folder)
        graph = all_needed_rate(lambda q: index.retrieve(q, k=k), folder)
        hybrid = all_needed_rate(lambda q: kb.search(q, k=k), folder)
        both = all_needed_rate(lambda q: index.retrieve(q, k=k, mode="hybrid"), folder)
        print(f"  k={k}: vector {dense:.0%}  graph {graph:.0%}  |  BM25+vector {hybrid:.0%}  graph+BM25+vector {both:.0%}")
        assert graph > dense


def test_local_answers_cite_chunks_and_reports_and_say_why_each_was_used(multihop):
    folder, _, index, model = multihop
    answer = index.query(QUESTION, mode="local", k=3)
    assert [h.metadata.get("kind", "chunk") for h in answer.sources] == ["chunk"] * 3 + ["report"] * (
        len(answer.sources) - 3)
    assert answer.sources[0].source == str(folder / "zentrix_labs.md")
    assert answer.answer.startswith("The answer is in the first source [1]")
    assert "(Removed citation [42]: no such source was retrieved.)" in answer.answer
    assert answer.citations == [{"n": 1, "source": str(folder / "zentrix_labs.md"), "section": "", "kind": "chunk",
                                 "id": answer.sources[0].id}]
    assert answer.why(1).endswith("zentrix_labs.md: names 'Zentrix Labs' (matched by the question, similarity 1.00)")
    prompt = model.calls[-1]["messages"][-1].content
    assert prompt.startswith("Graph:\nZentrix Labs (name):") and "[1] Zentrix Labs is headquartered in Orlan" in prompt
    assert answer.cost.stages["answer"].calls == 1
    hop = index.query("What did the mayor of Orlan do before she became mayor?", k=3)
    renata = next(n for n, h in enumerate(hop.sources, 1) if h.source == str(folder / "renata_szabo.md"))
    assert re.search(r"renata_szabo.md: names '(Renata Szabo|Caius Fenwright)', which appears beside 'Orlan' \(matched "
                     r"by the question, similarity 1.00\)$", hop.why(renata))
    with pytest.raises(ValueError, match="sources 1 to"):
        answer.why(99)


def test_global_search_maps_reports_to_scored_points_and_reduces_the_best(multihop):
    _, _, index, model = multihop
    before = len(model.calls)
    answer = index.query("What are the main themes?", mode="global")
    calls = Counter(kinds(model)[before:])
    level0 = [r for r in index.reports if r["level"] == 0]
    assert calls["answer"] == 1 and 1 <= calls["map"] <= len(level0)
    assert answer.sources and all(h.metadata["kind"] == "report" for h in answer.sources)
    assert answer.citations[0]["kind"] == "report" and "scored its point 80/100" in answer.why(1)
    reduce_prompt = model.calls[-1]["messages"][-1].content
    assert "- the first report answers it [1]" in reduce_prompt and "no help" not in reduce_prompt  # score 0 dropped
    assert answer.cost.stages["map"].calls == calls["map"]


def test_drift_primes_on_reports_then_answers_follow_ups_locally(multihop):
    _, _, index, model = multihop
    before = len(model.calls)
    answer = index.query(QUESTION, mode="drift", k=4)
    assert kinds(model)[before:] == ["primer", "answer", "answer"]  # primer, one follow-up, the reduction
    follow_up = model.calls[before + 1]["messages"][-1].content
    assert "Question: Who founded Zentrix Labs?" in follow_up
    assert {h.metadata.get("kind", "chunk") for h in answer.sources} == {"report", "chunk"}
    assert any("DRIFT primer" in answer.why(n) for n in range(1, len(answer.sources) + 1))
    assert any("follow-up 'Who founded Zentrix Labs?'" in answer.why(n) for n in range(1, len(answer.sources) + 1))
    final = model.calls[-1]["messages"][-1].content
    assert "First answer: A first answer." in final and "[42]" not in final.split("Sources:")[0]


def test_hybrid_fuses_graph_and_text_search(multihop):
    folder, _, index, _ = multihop
    answer = index.query(QUESTION, mode="hybrid", k=4)
    chunks = [h for h in answer.sources if h.metadata.get("kind", "chunk") == "chunk"]
    assert len(chunks) == 4 and all(answer.reasons[h.id].endswith("(fused)") for h in chunks)
    assert answer.sources[0].source == str(folder / "zentrix_labs.md")


def test_each_mode_is_an_agent_tool(multihop):
    _, _, index, _ = multihop
    tool = index.as_tool(mode="global")
    assert tool.name == "graph_global_multihop" and "main themes" in tool.description
    text = tool.invoke({"question": "What are the main themes?"}).content
    assert text.startswith("The answer is in the first source [1]") and "\n[1] report of community" in text
    with pytest.raises(ValueError, match="mode must be one of"):
        index.as_tool(mode="psychic")


@pytest.mark.parametrize("question, mode, message", [("", "local", "non-empty"), ("q", "nearby", "mode must be"),
                                                     ("q", "local", "k must be")])
def test_questions_are_validated(multihop, question, mode, message):
    with pytest.raises(ValueError, match=message):
        multihop[2].query(question, mode=mode, k=0 if message == "k must be" else 4)
