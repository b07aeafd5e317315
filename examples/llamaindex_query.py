"""LlamaIndex on AgentForge: a query engine over our knowledge base answered by the embedded
engine, with the source files it used; then the same Chroma collection read by LlamaIndex's own
vector store. Needs `pip install 'agentforge[llamaindex]'`.

    python examples/llamaindex_query.py
"""

from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.query_engine import RetrieverQueryEngine

from agentforge.agents import EngineChatModel
from agentforge.integrations.llamaindex import (
    AgentForgeEmbedding,
    AgentForgeLLM,
    AgentForgeRetriever,
    chroma_vector_store,
)
from agentforge.rag import KnowledgeBase

kb = KnowledgeBase("agentforge-docs")  # the demo's knowledge base: only changed files are embedded again
kb.ingest(Path(__file__).resolve().parents[1] / "docs", patterns=["*.md"])

llm = AgentForgeLLM(model=EngineChatModel("smollm2-135m", max_tokens=96, repetition_penalty=1.2))
engine = RetrieverQueryEngine.from_args(AgentForgeRetriever(kb.as_retriever(k=2)), llm=llm)
response = engine.query("Which embedding model does the knowledge base use by default?")
print(response)
for node in response.source_nodes:
    print(f"  {node.metadata['file_name']} ({node.metadata['section']}) score={node.score:.3f}")

index = VectorStoreIndex.from_vector_store(chroma_vector_store(kb), embed_model=AgentForgeEmbedding())
for node in index.as_retriever(similarity_top_k=2).retrieve("Which embedding model does the knowledge base use by default?"):
    print(Path(node.metadata["source"]).name, "|", node.metadata["section"])
