"""A knowledge graph over a few documents: what indexing will cost, what it cost, the communities
and their reports, then a multi-hop question answered from the graph, with why each source was used.

    python examples/graphrag_qa.py
"""

import tempfile
from pathlib import Path

from agentforge.agents import EngineChatModel
from agentforge.rag import KnowledgeBase
from agentforge.rag.graphrag import Budget, GraphIndex

DOCS = {
    "zentrix.md": "Zentrix Labs is headquartered in Orlan, where it employs about 300 engineers. Its best known "
                  "product is the Lumen-9 sensor.",
    "orlan.md": "Orlan is a river city on the northern coast. Its mayor is Renata Szabo, elected in 2018.",
    "quell.md": "Mara Quell is a physicist who founded Zentrix Labs in 2011 after leaving her university post.",
    "lumen.md": "The Lumen-9 sensor measures light with a precision of one part per billion. It is assembled in "
                "Port Ives.",
}

root = Path(tempfile.mkdtemp())
for name, text in DOCS.items():
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / name).write_text(text)
kb = KnowledgeBase("coast", path=root / "kb")
kb.ingest(root / "docs")

# "fast" extracts entities with NLP (no LLM call); the model writes the community reports
graph = GraphIndex(kb, EngineChatModel("smollm2-135m", max_tokens=512), method="fast")
print("estimate:\n" + graph.estimate().table())
result = graph.index(budget=Budget(max_calls=50))
print("\nmeasured:\n" + result.cost.table())
print(f"\n{result.entities} entities, {result.relationships} relationships, {result.communities} communities")
for report in graph.reports:
    print(f"  community {report['community']}: {report['title']}")

answer = graph.query("Who is the mayor of the city where the company founded by Mara Quell is headquartered?", k=3)
print("\n" + answer.answer)
for n in range(1, len(answer.sources) + 1):
    print(answer.why(n))
