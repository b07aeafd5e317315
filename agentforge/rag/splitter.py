"""Token-aware recursive splitting that follows a document's structure: Markdown headings (found
with markdown-it-py, so `#` inside code blocks is not a heading) cut sections, and inside a
section LangChain's `RecursiveCharacterTextSplitter` splits by paragraph, line, sentence, word,
counting tokens with the embedding model's own tokenizer."""

from __future__ import annotations

from .documents import Chunk, Document

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


class Splitter:
    """Split documents into chunks of at most `chunk_tokens` tokens (of `tokenizer`, a Hugging Face
    tokenizer: the embedder's, so no chunk is truncated when embedded), `overlap_tokens` shared
    between neighbours. Each chunk carries its section's heading path ("Guide > Install")."""

    def __init__(self, tokenizer, *, chunk_tokens: int = 200, overlap_tokens: int = 30) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if not isinstance(chunk_tokens, int) or chunk_tokens < 16:
            raise ValueError("chunk_tokens must be an integer >= 16")
        if not isinstance(overlap_tokens, int) or not 0 <= overlap_tokens < chunk_tokens // 2:
            raise ValueError("overlap_tokens must be an integer in [0, chunk_tokens / 2)")
        self.tokenizer, self.chunk_tokens, self.overlap_tokens = tokenizer, chunk_tokens, overlap_tokens
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, separators=SEPARATORS,
            keep_separator="end")

    def split(self, doc: Document) -> list[Chunk]:
        chunks = []
        for section, start, body in sections(doc.text) if doc.markdown else [("", 0, doc.text)]:
            offset = 0
            for piece in self._splitter.split_text(body):
                # pieces come in order and overlap: each starts after the previous one's start
                # (LangChain's own start_index counts the overlap in characters, not tokens)
                found = body.find(piece, offset)
                offset = (found if found >= 0 else body.find(piece)) + 1
                begin = start + offset - 1
                chunks.append(Chunk(piece, doc.source, begin, begin + len(piece), section, dict(doc.metadata)))
        return chunks


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
