"""Rerankers reorder retrieved candidates with a closer look than the first-stage search: a
cross-encoder from any local model folder, or the chat model as a listwise judge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentforge.engine.protocol import ChatMessage

from .documents import Hit

LISTWISE = ("Rank the passages by how well they answer the question, best first. Give the passage numbers."
            "\n\nQuestion: {question}\n\n{passages}")


@runtime_checkable
class Reranker(Protocol):
    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


class CrossEncoderReranker:
    """A sequence-classification model over (query, passage) pairs (e.g. ms-marco-MiniLM-L-6-v2 saved
    locally); hits come back sorted by its score, which replaces theirs."""

    def __init__(self, path: str | Path, *, batch_size: int = 16, max_length: int = 512) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a model folder (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        self.batch_size, self.max_length = batch_size, max_length

    def scores(self, query: str, texts: list[str]) -> list[float]:
        import torch

        from agentforge.engine.cpus import openmp_threads_released

        out: list[float] = []
        # its OpenMP team would make an engine in this process sleep between ops (engine.cpus)
        with torch.inference_mode(), openmp_threads_released():
            for start in range(0, len(texts), self.batch_size):
                part = texts[start:start + self.batch_size]
                enc = self.tokenizer([query] * len(part), part, padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                logits = self.model(**enc).logits
                # one logit: a relevance score; two or more: the probability of the last class ("relevant")
                out += (logits[:, 0] if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]).tolist()
        return out

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        scores = self.scores(query, [h.text for h in hits])
        ranked = sorted(zip(scores, range(len(hits))), key=lambda pair: -pair[0])
        return [Hit(hits[i].id, hits[i].text, hits[i].source, score, hits[i].metadata) for score, i in ranked]


class LLMReranker:
    """The chat model ranks the passages in one call, its answer constrained to passage numbers;
    passages it leaves out keep their order after the ones it ranked."""

    def __init__(self, model, *, max_passages: int = 20, max_chars: int = 400) -> None:
        from agentforge.agents import as_chat_model

        self.model, self.max_passages, self.max_chars = as_chat_model(model), max_passages, max_chars

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        head, tail = hits[:self.max_passages], hits[self.max_passages:]
        if len(head) < 2:
            return list(hits)

        class Ranking(BaseModel):
            ranking: list[Literal[tuple(range(1, len(head) + 1))]] = Field(min_length=1, max_length=len(head))

        passages = "\n\n".join(f"[{n}] {h.text[:self.max_chars]}" for n, h in enumerate(head, 1))
        try:
            ranking = self.model.with_structured_output(Ranking).invoke(
                [ChatMessage(role="user", content=LISTWISE.format(question=query, passages=passages))]).ranking
        except ValueError:  # an unparseable answer costs the reranking, never the search
            return list(hits)
        order = list(dict.fromkeys(n - 1 for n in ranking))
        order += [i for i in range(len(head)) if i not in order]
        return [head[i] for i in order] + tail
