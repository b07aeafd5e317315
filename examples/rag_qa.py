"""A knowledge base over AgentForge's own docs (the one `agentforge demo` searches, kept in the user's
data directory): ingest (again: nothing re-embedded), search three ways, then a cited answer from
the RAG graph on the embedded model.

    python examples/rag_qa.py
"""

from pathlib import Path

from agentforge.agents import EngineChatModel
from agentforge.rag import KnowledgeBase, create_rag_graph

docs = Path(__file__).resolve().parents[1] / "docs"
kb = KnowledgeBase("agentforge-docs")
print(kb.ingest(docs, patterns=["**/*.md"]))
print(kb.ingest(docs, patterns=["**/*.md"]))  # unchanged files: skipped unread

question = "How do I resume a graph run after an interrupt?"
for mode in ("dense", "bm25", "hybrid"):
    best = kb.search(question, k=1, mode=mode)[0]
    print(f"{mode:>6}: {Path(best.source).name} ({best.metadata['section']})")

rag = create_rag_graph(EngineChatModel("smollm2-135m", max_tokens=128, temperature=0.0), kb.as_retriever(k=3),
                       grade=False)
out = rag.invoke({"question": question})
print("\n" + out["answer"])
for citation in out["citations"]:
    print(f"[{citation['n']}] {Path(citation['source']).name} ({citation['section']})")
