"""Reranking and query rewriting: a cross-encoder from a local folder (here a tiny random one, so
the test checks the plumbing, not a model's taste), the chat model as a listwise judge, and
multi-query retrieval fused by reciprocal rank."""

from __future__ import annotations

import pytest
import torch

from agentforge.agents import ScriptedChatModel
from agentforge.rag import CrossEncoderReranker, Hit, LLMReranker, MultiQueryRetriever

HITS = [Hit(str(i), f"passage number {i} about topic {i}", f"/kb/{i}.md", 1.0 - i / 10, {}) for i in range(5)]


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory, embedder):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=embedder.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    path = tmp_path_factory.mktemp("cross-encoder")
    BertForSequenceClassification(config).save_pretrained(path)
    embedder.tokenizer.save_pretrained(path)
    return path


def test_cross_encoder_orders_by_its_scores(cross_encoder_dir):
    reranker = CrossEncoderReranker(cross_encoder_dir)
    reranked = reranker.rerank("which topic?", HITS)
    expected = reranker.scores("which topic?", [h.text for h in HITS])
    assert [h.score for h in reranked] == sorted(expected, reverse=True)
    assert sorted(h.id for h in reranked) == [h.id for h in HITS]
    with pytest.raises(ValueError, match="not a model folder"):
        CrossEncoderReranker(cross_encoder_dir / "nowhere")


def test_knowledge_base_search_applies_the_reranker(corpus_kb, cross_encoder_dir):
    reranker = CrossEncoderReranker(cross_encoder_dir)
    hits = corpus_kb.search("employees and factories", k=4, reranker=reranker)
    assert len(hits) == 4 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="reranker"):
        corpus_kb.search("x", reranker=object())


def test_llm_listwise_reranker():
    model = ScriptedChatModel(['{"ranking": [3, 1, 3]}', "not json"])
    reranker = LLMReranker(model)
    assert [h.id for h in reranker.rerank("q", HITS)] == ["2", "0", "1", "3", "4"]
    assert "[5] passage number 4" in model.calls[0]["messages"][-1].content
    assert [h.id for h in reranker.rerank("q", HITS)] == [h.id for h in HITS]  # a bad answer keeps the order


def test_multi_query_fuses_the_rewrites():
    class Echo:
        def __init__(self):
            self.queries = []

        def retrieve(self, query):
            self.queries.append(query)
            return [HITS[len(self.queries) % 5], HITS[0]]

    retriever = Echo()
    model = ScriptedChatModel(['{"queries": ["other words", "q"]}'])
    hits = MultiQueryRetriever(retriever, model, n=2, k=3).retrieve("q")
    assert retriever.queries == ["q", "other words"]
    assert hits[0].id == "0" and len(hits) == 3  # in both lists: first after fusion
