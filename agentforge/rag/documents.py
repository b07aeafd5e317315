"""The records RAG passes around: a loaded `Document`, a `Chunk` of it, a search `Hit`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Document:
    """Text loaded from one file (or one page / record of it). `markdown` says whether `#` lines
    are headings, which the splitter turns into section metadata."""

    text: str
    source: str
    metadata: dict = field(default_factory=dict)
    markdown: bool = False

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(slots=True)
class Chunk:
    """A piece of a document small enough to embed, with where it came from: `start`/`end` are
    character offsets into the document's text, `section` the heading path above it."""

    text: str
    source: str
    start: int
    end: int
    section: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def index_text(self) -> str:
        """What is embedded and BM25-indexed: the section heading gives a chunk its context."""
        return f"{self.section}\n{self.text}" if self.section else self.text


@dataclass(slots=True)
class Hit:
    """A retrieved chunk: its text, its source file, a score (higher is better) and metadata
    (section, page, start, end, ...)."""

    id: str
    text: str
    source: str
    score: float
    metadata: dict = field(default_factory=dict)

    @property
    def location(self) -> str:
        """Where in its source the chunk is: the section heading path, else the page, else ""."""
        return self.metadata.get("section") or (f"page {self.metadata['page']}" if "page" in self.metadata else "")

    def __str__(self) -> str:
        return f"{self.source}{f' ({self.location})' if self.location else ''}: {self.text}"
