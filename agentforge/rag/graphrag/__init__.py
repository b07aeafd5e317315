"""GraphRAG: a knowledge base's chunks as a knowledge graph — entities and relationships (by the
model under a schema, or by NLP at no LLM cost), hierarchical communities with reports — and
local, global, DRIFT and hybrid questions over it, each answer citing the chunks and reports it
used. Indexing says what it will cost and what it cost, and stops within a budget."""

from .cost import Budget, Cost, StageCost
from .index import GraphIndex, IndexResult
from .search import GraphAnswer
from .view import graph_view

__all__ = ["Budget", "Cost", "GraphAnswer", "GraphIndex", "IndexResult", "StageCost", "graph_view"]
