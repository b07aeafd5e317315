"""Loaders keep what a reader needs (text, headings as sections, pages) and drop the rest."""

from __future__ import annotations

import json

import pytest

from agentforge.rag import LoadError, load_file
from agentforge.rag.splitter import Splitter


def test_html_keeps_main_text_and_headings_drops_navigation_and_scripts(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>T</title><script>var x = 1</script></head><body><nav>Home | About</nav>"
                    "<main><h1>Guide</h1><p>Intro text.</p><h2>Install</h2><ul><li><p>Run pip.</p></li></ul></main>"
                    "<footer>cookies</footer></body></html>")
    [doc] = load_file(page)
    assert doc.text == "# Guide\n\nIntro text.\n\n## Install\n\nRun pip."
    assert doc.metadata == {"format": "html", "title": "T"} and doc.markdown


def test_markdown_sections_become_chunk_metadata(tmp_path, embedder):
    md = tmp_path / "guide.md"
    md.write_text("# Guide\n\nIntro.\n\n## Install\n\nRun pip.\n\n```\n# not a heading\n```\n\n## Use\n\nCall it.\n")
    chunks = Splitter(embedder.tokenizer).split(load_file(md)[0])
    assert [c.section for c in chunks] == ["Guide", "Guide > Install", "Guide > Use"]
    assert "# not a heading" in chunks[1].text
    text = md.read_text()
    assert all(text[c.start:c.end] == c.text for c in chunks)


def test_long_sections_split_by_tokens_with_overlap(tmp_path, embedder):
    md = tmp_path / "long.md"
    md.write_text("# Long\n\n" + " ".join(f"Sentence number {i} talks about topic {i}." for i in range(300)))
    chunks = Splitter(embedder.tokenizer, chunk_tokens=64, overlap_tokens=16).split(load_file(md)[0])
    assert len(chunks) > 10
    assert all(len(embedder.tokenizer.tokenize(c.text)) <= 64 for c in chunks)
    assert all(chunks[i].start < chunks[i - 1].end for i in range(1, len(chunks)))  # neighbours overlap


def test_pdf_pages_docx_headings_json_jsonl_csv(corpus):
    folder, _ = corpus
    pdf = load_file(next(folder.glob("*.pdf")))
    assert [d.metadata["page"] for d in pdf] == [1, 2, 3, 4] and "founded in" in pdf[0].text
    [docx] = load_file(next(folder.glob("*.docx")))
    assert docx.markdown and "\n\n# Overview\n\n" in docx.text.replace("## ", "# ") or "# Overview" in docx.text
    [js] = load_file(next(folder.glob("*.json")))
    assert js.text.startswith("company: ") and "profile.overview: " in js.text
    lines = load_file(next(folder.glob("*.jsonl")))
    assert [d.metadata["line"] for d in lines] == list(range(1, 9)) and lines[0].text.startswith("company: ")
    [table] = load_file(next(folder.glob("*.csv")))
    assert table.text.splitlines()[0].startswith("company: ") and "topic: Overview" in table.text


def test_text_in_legacy_encodings_is_decoded(tmp_path):
    latin = tmp_path / "café.txt"
    latin.write_bytes("Le café de la gare, déjà fermé à l'été, rouvre en août avec une crème brûlée.".encode("cp1252"))
    [doc] = load_file(latin)
    assert "café" in doc.text and "brûlée" in doc.text


@pytest.mark.parametrize("name, content, reason", [
    ("empty.md", b"", "empty file"),
    ("blob.bin", bytes(range(256)) * 64, "binary"),
    ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "unreadable PDF"),
    ("broken.docx", b"PK\x03\x04 not a zip", "unreadable DOCX"),
    ("bad.json", b'{"a": ', "invalid JSON"),
])
def test_bad_files_raise_a_load_error_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as error:
        load_file(path)
    assert str(path) in str(error.value) and reason in str(error.value)


def test_encrypted_pdf_is_refused(tmp_path, corpus):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(next(corpus[0].glob("*.pdf"))).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as f:
        writer.write(f)
    with pytest.raises(LoadError, match="encrypted PDF"):
        load_file(locked)


def test_json_rendering_is_readable(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"name": "Ada", "tags": ["a", "b"], "items": [{"id": 1}, {"id": 2}], "none": None}))
    assert load_file(path)[0].text == "name: Ada\ntags: a, b\nitems.id: 1\n\nitems.id: 2"


@pytest.mark.parametrize("chunk_tokens,overlap_tokens", [(200, 30), (48, 12), (16, 0)])
def test_splitting_matches_langchains_recursive_splitter(embedder, chunk_tokens, overlap_tokens):
    """Our splitter runs LangChain's algorithm without needing langchain-core: same pieces, on the
    project's own docs (prose, lists, code, tables) and on text with no separators at all."""
    from pathlib import Path

    splitters = pytest.importorskip("langchain_text_splitters")
    from agentforge.rag.splitter import SEPARATORS

    reference = splitters.RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        embedder.tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, separators=SEPARATORS,
        keep_separator="end")
    ours = Splitter(embedder.tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    docs = Path(__file__).resolve().parents[3] / "docs"
    texts = [p.read_text() for p in sorted(docs.glob("*.md"))[:6]]
    texts += ["x" * 3000, "word, " * 500 + "end. " * 40, "  \n\n  \n", ""]
    for text in texts:
        assert ours.split_text(text) == reference.split_text(text)
