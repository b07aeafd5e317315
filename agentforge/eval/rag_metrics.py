"""RAG metrics over a RAG graph's output (`output.raw["hits"]`, `output.text`): context recall and
precision against reference phrases (deterministic), faithfulness as a schema-constrained judge,
answer relevance as embedding similarity of question and answer."""

from __future__ import annotations

from collections.abc import Sequence

from .dataset import Example
from .judge import LLMJudge
from .metrics import embedding_similarity, normalize
from .runner import Output

FAITHFULNESS = "Every claim in the answer is supported by the context; nothing is made up."


def _texts(output: Output) -> list[str]:
    hits = (output.raw or {}).get("hits") if isinstance(output.raw, dict) else None
    if hits is None:
        raise ValueError("a RAG metric needs a RAG graph's output (its state with 'hits')")
    return [normalize(hit.text) for hit in hits]


def _phrases(example: Example) -> list[str]:
    phrases = example.reference.get("contexts") if isinstance(example.reference, dict) else None
    if not phrases or not all(isinstance(p, str) for p in phrases):
        raise ValueError('context metrics need reference {"contexts": ["phrase a relevant passage holds", ...]}')
    return [normalize(p) for p in phrases]


def context_recall(output: Output, example: Example) -> float:
    """Share of the reference's context phrases found in some retrieved passage."""
    texts, phrases = _texts(output), _phrases(example)
    return sum(any(p in t for t in texts) for p in phrases) / len(phrases)


def context_precision(output: Output, example: Example) -> float:
    """Average precision of the ranking: mean of precision@i over the ranks i of relevant passages
    (a passage is relevant when it holds a reference phrase); 0 when none is."""
    texts, phrases = _texts(output), _phrases(example)
    relevant = [any(p in t for p in phrases) for t in texts]
    precisions = [sum(relevant[:i + 1]) / (i + 1) for i, r in enumerate(relevant) if r]
    return sum(precisions) / len(precisions) if precisions else 0.0


def answer_relevance(output: Output, example: Example) -> float:
    """Cosine similarity of the question and the answer (MiniLM embeddings)."""
    return embedding_similarity(output.text, example.input if isinstance(example.input, str) else str(example.input))


class Faithfulness:
    """An LLM judge of whether the answer sticks to the retrieved passages, scaled to [0, 1]."""

    __name__ = "faithfulness"

    def __init__(self, model, *, scale: tuple[int, int] = (1, 5)) -> None:
        self.judge = LLMJudge(model, FAITHFULNESS, scale=scale, name="faithfulness")

    def __call__(self, output: Output, example: Example) -> float:
        context = "\n\n".join(f"[{n}] {hit.text}" for n, hit in enumerate(output.raw["hits"], 1)) \
            if isinstance(output.raw, dict) and output.raw.get("hits") is not None else None
        if context is None:
            raise ValueError("faithfulness needs a RAG graph's output (its state with 'hits')")
        question = example.input if isinstance(example.input, str) else str(example.input)
        return self.judge(output.text, question=f"{question}\n\nContext:\n{context}")


def rag_metrics(judge_model=None) -> Sequence:
    """The RAG metric set: context recall and precision, answer relevance, and faithfulness when a judge model is given."""
    found = [context_recall, context_precision, answer_relevance]
    return found + [Faithfulness(judge_model)] if judge_model is not None else found
