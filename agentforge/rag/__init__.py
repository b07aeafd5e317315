"""Retrieval-augmented generation: knowledge bases from real documents (loaders, structure-aware
splitting, fast local embeddings, ChromaDB, BM25 + dense hybrid search) and answers with checked
citations."""

from .answer import create_rag_agent, create_rag_graph
from .documents import Chunk, Document, Hit
from .embeddings import Embedder, LocalEmbedder
from .embeddings_openai import OpenAIEmbedder
from .knowledge_base import IngestStats, KnowledgeBase
from .loaders import LoadError, load_file
from .rerank import CrossEncoderReranker, LLMReranker, Reranker
from .retrieval import MultiQueryRetriever, Retriever

__all__ = ["Chunk", "CrossEncoderReranker", "Document", "Embedder", "Hit", "IngestStats", "KnowledgeBase", "LLMReranker",
           "LoadError", "LocalEmbedder", "MultiQueryRetriever", "OpenAIEmbedder", "Reranker", "Retriever",
           "create_rag_agent", "create_rag_graph", "load_file"]
