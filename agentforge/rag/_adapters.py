"""A knowledge base as a `Retriever` and as an agent `Tool`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentforge.tools import Tool

from .documents import Hit


class KnowledgeBaseRetriever:
    """`kb.search(query, **settings)` behind the `Retriever` protocol."""

    def __init__(self, kb, *, k: int, mode: str, where: dict | None, options: dict) -> None:
        from .knowledge_base import MODES

        if not isinstance(k, int) or not 1 <= k <= 1000:
            raise ValueError("k must be an integer in [1, 1000]")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.kb, self.k, self.mode, self.where, self.options = kb, k, mode, where, options

    def retrieve(self, query: str) -> list[Hit]:
        return self.kb.search(query, k=self.k, mode=self.mode, where=self.where, **self.options)


def format_hits(hits: list[Hit], *, max_chars: int = 700) -> str:
    """Numbered passages with their sources, as a model reads them: "[1] path (section)\\ntext"."""
    if not hits:
        return "No matching passages."
    blocks = []
    for n, hit in enumerate(hits, 1):
        text = hit.text if len(hit.text) <= max_chars else hit.text[:max_chars].rsplit(" ", 1)[0] + " ..."
        blocks.append(f"[{n}] {hit.source}{f' ({hit.location})' if hit.location else ''}\n{text}")
    return "\n\n".join(blocks)


def knowledge_base_tool(kb, *, name: str | None, description: str | None, k: int, options: dict) -> Tool:
    retriever = KnowledgeBaseRetriever(kb, k=k, mode=options.pop("mode", "hybrid"), where=options.pop("where", None),
                                       options=options)

    def search(query: Annotated[str, Field(min_length=1, max_length=500)]) -> str:
        return format_hits(retriever.retrieve(query))

    return Tool(search, name=name or f"search_{kb.name.replace('-', '_').replace('.', '_')}",
                description=description or f"Search the '{kb.name}' knowledge base. Returns numbered passages "
                                           f"with their source files.")
