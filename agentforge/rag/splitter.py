"""Token-aware recursive splitting that follows a document's structure: Markdown headings (found
with markdown-it-py, so `#` inside code blocks is not a heading) cut sections, and inside a
section a recursive splitter (the algorithm of LangChain's `RecursiveCharacterTextSplitter`,
separators kept at the end of each piece) splits by paragraph, line, sentence, word, counting
tokens with the embedding model's own tokenizer."""

from __future__ import annotations

import re

from .documents import Chunk, Document

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


class Splitter:
    """Split documents into chunks of at most `chunk_tokens` tokens (of `tokenizer`, a Hugging Face
    tokenizer: the embedder's, so no chunk is truncated when embedded), `overlap_tokens` shared
    between neighbours. Each chunk carries its section's heading path ("Guide > Install")."""

    def __init__(self, tokenizer, *, chunk_tokens: int = 200, overlap_tokens: int = 30) -> None:
        if not isinstance(chunk_tokens, int) or chunk_tokens < 16:
            raise ValueError("chunk_tokens must be an integer >= 16")
        if not isinstance(overlap_tokens, int) or not 0 <= overlap_tokens < chunk_tokens // 2:
            raise ValueError("overlap_tokens must be an integer in [0, chunk_tokens / 2)")
        self.tokenizer, self.chunk_tokens, self.overlap_tokens = tokenizer, chunk_tokens, overlap_tokens

    def split(self, doc: Document) -> list[Chunk]:
        chunks = []
        for section, start, body in sections(doc.text) if doc.markdown else [("", 0, doc.text)]:
            offset = 0
            for piece in self.split_text(body):
                # pieces come in order and overlap: each starts after the previous one's start
                # (LangChain's own start_index counts the overlap in characters, not tokens)
                found = body.find(piece, offset)
                offset = (found if found >= 0 else body.find(piece)) + 1
                begin = start + offset - 1
                chunks.append(Chunk(piece, doc.source, begin, begin + len(piece), section, dict(doc.metadata)))
        return chunks

    def split_text(self, text: str, separators: list[str] = SEPARATORS) -> list[str]:
        """`text` in pieces of at most `chunk_tokens` tokens where it can be cut at the first of
        `separators` it contains (a piece still too long is cut at the next ones), neighbours
        merged up to the budget with `overlap_tokens` carried over."""
        at = next(i for i, sep in enumerate(separators) if not sep or sep in text)
        separator, finer = separators[at], separators[at + 1:] if separators[at] else []
        chunks, short = [], []
        for piece in _pieces(text, separator):
            size = self._tokens(piece)
            if size < self.chunk_tokens:
                short.append((piece, size))
                continue
            if short:
                chunks += self._merge(short)
                short = []
            chunks += self.split_text(piece, finer) if finer else [piece]
        return chunks + self._merge(short) if short else chunks

    def _merge(self, pieces: list[tuple[str, int]]) -> list[str]:
        merged, window, total = [], [], 0
        for piece, size in pieces:
            if window and total + size > self.chunk_tokens:
                merged.append("".join(p for p, _ in window).strip())
                while total > self.overlap_tokens or (total + size > self.chunk_tokens and total > 0):
                    total -= window.pop(0)[1]
            window.append((piece, size))
            total += size
        merged.append("".join(p for p, _ in window).strip())
        return [m for m in merged if m]

    def _tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


def _pieces(text: str, separator: str) -> list[str]:
    """`text` cut after each `separator` (every character when it is "")."""
    if not separator:
        return list(text)
    parts = re.split(f"({re.escape(separator)})", text)
    return [p for p in [a + b for a, b in zip(parts[::2], parts[1::2])] + parts[-1:] if p]


def sections(text: str) -> list[tuple[str, int, str]]:
    """(heading path, start offset, body) for each part of Markdown `text` between headings."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    headings = [(int(tok.tag[1]), tokens[i + 1].content.strip(), tok.map[0], tok.map[1])
                for i, tok in enumerate(tokens) if tok.type == "heading_open" and tok.map]
    parts, path = [], []
    cuts = [(0, 0, 0, "")] + [(first, last, level, title) for level, title, first, last in headings]
    for n, (_, body_line, level, title) in enumerate(cuts):
        if level:
            path = [p for p in path if p[0] < level] + [(level, title)]
        end_line = cuts[n + 1][0] if n + 1 < len(cuts) else len(line_starts) - 1
        start, end = line_starts[body_line], line_starts[end_line]
        body = text[start:end]
        if body.strip():
            parts.append((" > ".join(t for _, t in path), start, body))
    return parts
