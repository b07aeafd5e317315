"""Retrieval-augmented generation: knowledge bases from real documents (loaders, structure-aware
splitting, fast local embeddings, ChromaDB, BM25 + dense hybrid search) and answers with checked
citations."""

from .documents import Chunk, Document, Hit
from .embeddings import Embedder, LocalEmbedder
from .embeddings_openai import OpenAIEmbedder
from .knowledge_base import IngestStats, KnowledgeBase
from .loaders import LoadError, load_file
from .retrieval import MultiQueryRetriever, Retriever, maximal_marginal_relevance, reciprocal_rank_fusion

__all__ = ["Chunk", "Document", "Embedder", "Hit", "IngestStats", "KnowledgeBase", "LoadError", "LocalEmbedder",
           "MultiQueryRetriever", "OpenAIEmbedder", "Retriever", "load_file", "maximal_marginal_relevance",
           "reciprocal_rank_fusion"]
