"""OCR: a page rendered by the test from known text, as an image and as a scanned (image-only) PDF,
is ingested and its text found by search; bad images get a clear LoadError."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from agentforge.rag import KnowledgeBase, LoadError, load_file

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed (make system-deps)")

LINES = ["Harbour Office Notice", "The Quillmoor archive holds 4312 maritime charts.",
         "Visitors may consult them on Tuesdays from nine to noon.", "Ask for the keeper, Mrs. Ondrava."]


def scanned_page() -> Image.Image:
    """A grey, slightly blurred page of typed text, as a flatbed scanner gives it."""
    font = ImageFont.truetype("DejaVuSans.ttf", 34) if _has_font() else ImageFont.load_default(size=34)
    page = Image.new("L", (1500, 700), 235)
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(LINES):
        draw.text((80, 80 + n * 120), line, fill=25, font=font)
    return page.filter(ImageFilter.GaussianBlur(0.6))


def _has_font() -> bool:
    try:
        ImageFont.truetype("DejaVuSans.ttf", 10)
        return True
    except OSError:
        return False


def test_a_scanned_image_and_a_scanned_pdf_are_ingested_and_found(tmp_path, embedder):
    from fpdf import FPDF

    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_page().save(docs / "notice.png")
    pdf = FPDF(unit="pt", format=(1500, 700))
    pdf.add_page()
    buffer = io.BytesIO()
    scanned_page().save(buffer, format="PNG")
    pdf.image(buffer, x=0, y=0, w=1500, h=700)  # an image-only page: no text layer
    pdf.output(str(docs / "notice-scan.pdf"))

    [image_doc] = load_file(docs / "notice.png")
    assert "4312 maritime charts" in image_doc.text and image_doc.metadata == {"format": "image"}
    [pdf_doc] = load_file(docs / "notice-scan.pdf")
    assert "Quillmoor archive" in pdf_doc.text and pdf_doc.metadata == {"format": "pdf", "page": 1}

    kb = KnowledgeBase("ocr", path=tmp_path / "kb", embedder=embedder)
    stats = kb.ingest(docs)
    assert not stats.errors and stats.documents == 2
    hits = kb.search("When can visitors consult the maritime charts?", k=2)
    assert {h.source for h in hits} == {str(docs / "notice.png"), str(docs / "notice-scan.pdf")}
    assert any("Tuesdays" in h.text for h in hits)


def test_bad_images_get_a_clear_error(tmp_path, monkeypatch):
    good = tmp_path / "page.png"
    scanned_page().save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:400])
    wrong = tmp_path / "photo.jpg"
    wrong.write_text("this is not a JPEG")
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 8000), 255).save(huge)  # 72 megapixels, tiny on disk
    for path, reason in [(truncated, "not a readable image"), (wrong, "not a readable image"),
                         (huge, "image too large for OCR")]:
        with pytest.raises(LoadError, match=reason):
            load_file(path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(LoadError, match="OCR needs Tesseract.*apt install tesseract-ocr"):
        load_file(good)
