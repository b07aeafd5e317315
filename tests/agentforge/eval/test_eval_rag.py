"""RAG metrics by hand, and an eval of the shipped RAG pipeline on the RAG fixture set: the run's
report holds context recall/precision, answer relevance and faithfulness for every question."""

from __future__ import annotations

import pytest

from agentforge.agents import ScriptedChatModel
from agentforge.eval import Example, Faithfulness, Output, context_precision, context_recall, evaluate, rag_metrics
from agentforge.rag import Hit, create_rag_graph


def hits(*texts):
    return [Hit(str(i), t, f"/kb/{i}.md", 1.0, {}) for i, t in enumerate(texts)]


def test_context_metrics_by_hand():
    example = Example("q", {"contexts": ["founded in 1987", "employs 40 people"]})
    out = Output("a", raw={"hits": hits("It was founded in 1987.", "Unrelated.", "It employs 40 people.")})
    assert context_recall(out, example) == 1.0
    assert context_precision(out, example) == pytest.approx((1 / 1 + 2 / 3) / 2)  # relevant at ranks 1 and 3
    assert context_recall(Output("a", raw={"hits": hits("Unrelated.")}), example) == 0.0
    assert context_precision(Output("a", raw={"hits": hits("Unrelated.")}), example) == 0.0
    with pytest.raises(ValueError, match="contexts"):
        context_recall(out, Example("q", "just a string"))


def test_rag_pipeline_eval_on_the_fixture_set(tmp_path, corpus, corpus_kb):
    _, questions = corpus
    dataset = [Example(q.question, {"contexts": [q.phrase]}) for q in questions[:12]]
    generator = ScriptedChatModel([lambda messages: "From the passages [1]."] * len(dataset))
    judge = ScriptedChatModel(['{"reasoning": "supported", "score": 4}'] * len(dataset))
    graph = create_rag_graph(generator, corpus_kb.as_retriever(k=5), grade=False)
    run = evaluate(graph, dataset, rag_metrics(judge), concurrency=1, progress=False, name="rag")
    assert set(run.summary) == {"context_recall", "context_precision", "answer_relevance", "faithfulness"}
    assert all(r["error"] is None for r in run.rows)
    assert run.summary["context_recall"]["mean"] >= 0.9  # hybrid recall@5 on these questions
    assert 0 < run.summary["context_precision"]["mean"] <= run.summary["context_recall"]["mean"]
    assert run.summary["faithfulness"]["mean"] == 0.75
    assert "Context:\n[1] " in judge.calls[0]["messages"][-1].content
    run.to_json(tmp_path / "rag.json")
    assert (tmp_path / "rag.json").stat().st_size > 1000
    with pytest.raises(ValueError, match="RAG graph"):
        Faithfulness(judge)(Output("x"), dataset[0])
