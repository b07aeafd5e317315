"""Answers with checked citations: the RAG graph (retrieve -> grade -> generate -> check) and the
agentic variant, on scripted models; a cited number that maps to no passage is removed and said."""

from __future__ import annotations

from agentforge.agents import ScriptedChatModel
from agentforge.rag import Hit
from agentforge.rag.answer import NOT_FOUND, check_citations, create_rag_agent, create_rag_graph

HITS = [Hit("a", "Velloran Dynamics was founded in 1987 by Amara Ibarra.", "/kb/velloran.md", 0.9, {"section": "Overview"}),
        Hit("b", "The XR-7 lens corrects colour blindness.", "/kb/optics.pdf", 0.5, {"page": 2})]


class Fixed:
    def __init__(self, hits):
        self.hits, self.queries = hits, []

    def retrieve(self, query):
        self.queries.append(query)
        return list(self.hits)


def test_check_citations_keeps_valid_removes_invalid_and_says_so():
    text, citations, removed = check_citations("Founded in 1987 [1], see also [7].", HITS)
    assert text == "Founded in 1987 [1], see also.\n(Removed citation [7]: no such source was retrieved.)"
    assert citations == [{"n": 1, "source": "/kb/velloran.md", "section": "Overview"}] and removed == [7]


def test_an_uncited_answer_is_attributed_to_the_passage_that_supports_it():
    text, citations, _ = check_citations("It was founded in 1987 by Amara Ibarra.", HITS)
    assert text.endswith("[1]") and citations[0]["source"] == "/kb/velloran.md"
    text, citations, _ = check_citations("Bananas are yellow.", HITS)
    assert citations == [] and text == "Bananas are yellow."


def test_rag_graph_grades_generates_and_checks():
    model = ScriptedChatModel(['{"relevant": true}', '{"relevant": false}', "Amara Ibarra founded it in 1987 [1][3].",
                               '{"grounded": true, "unsupported": ""}'])
    retriever = Fixed(HITS)
    graph = create_rag_graph(model, retriever, check_grounded=True)
    out = graph.invoke({"question": "Who founded Velloran Dynamics?"})
    assert retriever.queries == ["Who founded Velloran Dynamics?"]
    assert [h.id for h in out["hits"]] == ["a"]  # the graded-out passage is gone
    assert out["answer"].startswith("Amara Ibarra founded it in 1987 [1].") and "[3]" in out["answer"].splitlines()[1]
    assert out["citations"] == [{"n": 1, "source": "/kb/velloran.md", "section": "Overview"}]
    assert out["removed_citations"] == [3] and out["grounded"] is True
    prompt = model.calls[2]["messages"][-1].content
    assert "[1] Velloran Dynamics was founded" in prompt and "XR-7" not in prompt
    assert model.calls[0]["response_format"] is not None  # grading is schema-constrained


def test_nothing_retrieved_means_no_made_up_answer():
    model = ScriptedChatModel([])
    out = create_rag_graph(model, Fixed([]), grade=False).invoke({"question": "Anything?"})
    assert out["answer"] == NOT_FOUND and out["citations"] == [] and model.calls == []


def test_agentic_variant_searches_the_knowledge_base(corpus, corpus_kb):
    _, questions = corpus
    question = questions[0]
    model = ScriptedChatModel([{"tool_calls": [{"name": "search_corpus", "args": {"query": question.question}}]},
                               lambda messages: f"From the passages: {messages[-1].content.splitlines()[0]}"])
    out = create_rag_agent(model, corpus_kb).invoke({"messages": [{"role": "user", "content": question.question}]})
    tool_result = out["messages"][-2].content
    assert tool_result.startswith("[1] ") and question.file in tool_result
    assert out["messages"][-1].content == f"From the passages: {tool_result.splitlines()[0]}"
    assert "search_corpus" in model.calls[0]["tools"]
