"""Retrieval building blocks: the `Retriever` protocol, reciprocal-rank fusion, MMR and
multi-query rewriting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .documents import Hit


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a query with ranked hits (a knowledge base's `.as_retriever()`, ...)."""

    def retrieve(self, query: str) -> list[Hit]: ...


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], *, weights: Sequence[float] | None = None,
                           rank_constant: int = 60) -> list[Hit]:
    """Fuse ranked lists: each hit scores sum(weight / (rank_constant + rank)) over the lists it is
    in (Cormack et al. 2009; 60 is their constant). Hits are matched by id."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, hit in enumerate(ranking, 1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (rank_constant + rank)
            first.setdefault(hit.id, hit)
    fused = sorted(scores, key=lambda i: -scores[i])
    return [Hit(i, first[i].text, first[i].source, scores[i], first[i].metadata) for i in fused]


def maximal_marginal_relevance(query: np.ndarray, hits: Sequence[Hit], vectors: np.ndarray, k: int,
                               diversity: float = 0.3) -> list[Hit]:
    """Pick `k` of `hits` (with unit `vectors`), each maximising (1 - diversity) * relevance -
    diversity * similarity to those already picked (Carbonell & Goldstein 1998)."""
    if not 0.0 <= diversity <= 1.0:
        raise ValueError("diversity must be in [0, 1]")
    relevance = vectors @ query
    chosen: list[int] = []
    left = list(range(len(hits)))
    while left and len(chosen) < k:
        redundancy = (vectors[left] @ vectors[chosen].T).max(axis=1) if chosen else np.zeros(len(left))
        best = left[int(np.argmax((1 - diversity) * relevance[left] - diversity * redundancy))]
        chosen.append(best)
        left.remove(best)
    return [hits[i] for i in chosen]


class MultiQueryRetriever:
    """Ask `model` for `n` rewordings of the query, retrieve for each and the original, fuse by RRF.
    Helps when the user's words are not the documents' words; costs one model call."""

    def __init__(self, retriever: Retriever, model, *, n: int = 3, k: int = 5) -> None:
        from agentforge.agents import as_chat_model

        if not isinstance(n, int) or not 1 <= n <= 10:
            raise ValueError("n must be an integer in [1, 10]")
        self.retriever, self.model, self.n, self.k = retriever, as_chat_model(model), n, k

    def rewrite(self, query: str) -> list[str]:
        from pydantic import BaseModel, Field

        class Queries(BaseModel):
            queries: list[str] = Field(min_length=1, max_length=self.n)

        prompt = (f"Write {self.n} different search queries that would find documents answering this question. "
                  f"Use other words than the question.\nQuestion: {query}")
        try:
            rewrites = self.model.with_structured_output(Queries).invoke([{"role": "user", "content": prompt}]).queries
        except Exception:  # a failing model costs the rewrites, never the search
            rewrites = []
        return [query, *dict.fromkeys(q.strip() for q in rewrites if q.strip() and q.strip() != query)]

    def retrieve(self, query: str) -> list[Hit]:
        return reciprocal_rank_fusion([self.retriever.retrieve(q) for q in self.rewrite(query)])[: self.k]
