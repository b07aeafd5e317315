"""Load files into `Document`s: text, Markdown, HTML, PDF (pypdf; scanned pages through OCR), DOCX
(python-docx), JSON, JSONL, CSV and images (OCR), and directories by glob pattern. A file that cannot be loaded raises `LoadError`
naming it and saying why, so one bad file never stops the others."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .documents import Document
from .ocr import IMAGES, OCRError, ocr_available, ocr_file, ocr_image

MAX_FILE_BYTES = 50 * 1024 * 1024
MARKDOWN = {".md", ".markdown", ".mdx"}
HTML = {".html", ".htm", ".xhtml"}
_HTML_DROP = ["script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form"]
_HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th", "dt", "dd"]


class LoadError(Exception):
    """A file that was skipped or refused; `str()` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def iter_files(paths: str | Path | Iterable[str | Path], patterns: Sequence[str] = ("**/*",)) -> Iterator[Path | LoadError]:
    """Each file under `paths` (a file, a directory searched with the glob `patterns`, or a list
    of both), resolved and in a stable order; a `LoadError` for a path that does not exist.
    Hidden files and folders (`.git`, ...) are left out of directory walks."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for given in paths:
        path = Path(given).expanduser()
        if path.is_file():
            yield path.resolve()
        elif path.is_dir():
            root = path.resolve()
            found = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
            yield from sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))
        else:
            yield LoadError(path, "no such file or directory")


def check_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Refuse a file that is missing, unreadable, empty or over `max_bytes` before reading it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(path, f"cannot read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise LoadError(path, f"too large ({size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)")
    if size == 0:
        raise LoadError(path, "empty file")


def load_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> list[Document]:
    """The documents in one file: one per PDF page and per JSONL record, one otherwise."""
    path = Path(path)
    check_file(path, max_bytes)
    suffix = path.suffix.lower()
    source = str(path)
    if suffix == ".pdf":
        docs = _pdf(path)
    elif suffix in IMAGES:
        try:
            docs = [Document(ocr_file(path), source, {"format": "image"})]
        except OCRError as exc:
            raise LoadError(path, str(exc)) from None
    elif suffix == ".docx":
        docs = [Document(_docx(path), source, {"format": "docx"}, markdown=True)]
    else:
        text = _decode(path)
        if suffix in MARKDOWN:
            docs = [Document(text, source, {"format": "markdown"}, markdown=True)]
        elif suffix in HTML:
            title, body = _html(text)
            docs = [Document(body, source, {"format": "html", **({"title": title} if title else {})}, markdown=True)]
        elif suffix == ".json":
            docs = [Document(_render(_json(path, text)), source, {"format": "json"})]
        elif suffix in (".jsonl", ".ndjson"):
            docs = [Document(_render(_json(path, line, n)), source, {"format": "jsonl", "line": n})
                    for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        elif suffix in (".csv", ".tsv"):
            docs = [Document(_csv(text, "\t" if suffix == ".tsv" else ","), source, {"format": "csv"})]
        else:
            docs = [Document(text, source, {"format": "text"})]
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise LoadError(path, "no text in it")
    return docs


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data))
        if not matches:
            raise LoadError(path, "binary file or unknown text encoding") from None
        # short texts fit several code pages equally well; Windows-1252 is by far the likeliest
        western = next((m for m in matches if m.encoding == "cp1252" and m.chaos <= matches[0].chaos + 0.1), None)
        text = str(western or matches[0])
    if "\x00" in text[:8192]:
        raise LoadError(path, "binary file")
    return text


def _html(markup: str) -> tuple[str, str]:
    """(title, main text) with headings as Markdown `#` lines; navigation, scripts and styles dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    lines = []
    for element in root.find_all(_HTML_BLOCKS):
        if element.find_parent(_HTML_BLOCKS) is not None:
            continue
        text = element.get_text(" ", strip=True)
        if text:
            level = int(element.name[1]) if element.name[0] == "h" and element.name[1:].isdigit() else 0
            lines.append(f"{'#' * level} {text}" if level else text)
    return title, "\n\n".join(lines) if lines else root.get_text("\n", strip=True)


def _pdf(path: Path) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "encrypted PDF (needs a password)")
        pages = [(page.extract_text() or "", page) for page in reader.pages]
        docs = []
        for n, (text, page) in enumerate(pages, 1):
            if not text.strip() and ocr_available():  # a scanned page: read its pictures
                text = "\n".join(ocr_image(image.data) for image in page.images)
            if text.strip():
                docs.append(Document(text, str(path), {"format": "pdf", "page": n}))
    except LoadError:
        raise
    except OCRError as exc:
        raise LoadError(path, f"a scanned page could not be read: {exc}") from None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(path, f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not docs:
        hint = "" if ocr_available() else "; scanned pages need OCR: install Tesseract (apt install tesseract-ocr)"
        raise LoadError(path, f"no extractable text in the PDF{hint}")
    return docs


def _docx(path: Path) -> str:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(path, f"unreadable DOCX ({type(exc).__name__}: {exc})") from None
    lines = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines += [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            continue
        text, style = block.text.strip(), (block.style.name if block.style is not None else "")
        if not text:
            continue
        if style == "Title":
            lines.append(f"# {text}")
        elif style.startswith("Heading ") and style[8:].isdigit():
            lines.append(f"{'#' * min(int(style[8:]), 6)} {text}")
        else:
            lines.append(text)
    return "\n\n".join(lines)


def _json(path: Path, text: str, line: int | None = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line}" if line is not None else f"line {exc.lineno}"
        raise LoadError(path, f"invalid JSON at {where}: {exc.msg}") from None


def _render(value, prefix: str = "") -> str:
    """JSON as `key: value` lines (nested keys joined by dots), records separated by blank lines."""
    if isinstance(value, dict):
        return "\n".join(line for key, item in value.items() if (line := _render(item, f"{prefix}{key}.")))
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return f"{prefix[:-1]}: {', '.join(map(str, value))}" if prefix else ", ".join(map(str, value))
        return "\n\n".join(_render(item, prefix) for item in value)
    if value is None or value == "":
        return ""
    return f"{prefix[:-1]}: {value}" if prefix else str(value)


def _csv(text: str, delimiter: str) -> str:
    rows = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    return "\n".join("; ".join(f"{key}: {value}" for key, value in row.items() if key and value) for row in rows)
