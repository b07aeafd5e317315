"""OCR for scanned pages: images, and the pages of a PDF that carry only a picture of their text,
read by Tesseract (the `tesseract` program: Debian's `tesseract-ocr`, which `make setup` installs),
so extraction works without a vision model."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pnm", ".ppm", ".pgm"}
MAX_PIXELS = 60_000_000  # a scanned A4 page at 600 dpi is 35 megapixels
TIMEOUT = 120.0


class OCRError(Exception):
    """The image could not be read (no Tesseract, not an image, too large, Tesseract failed)."""


def ocr_available() -> bool:
    return shutil.which("tesseract") is not None


def ocr_image(data: bytes, language: str = "eng") -> str:
    """The text Tesseract reads in an image (any format Pillow opens), as grayscale."""
    from PIL import Image, UnidentifiedImageError

    executable = shutil.which("tesseract")
    if executable is None:
        raise OCRError("OCR needs Tesseract: install it (Debian/Ubuntu: apt install tesseract-ocr)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise OCRError(f"image too large for OCR ({image.width}x{image.height}; "
                               f"the limit is {MAX_PIXELS // 1_000_000} megapixels)")
            buffer = io.BytesIO()
            image.convert("L").save(buffer, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise OCRError(f"not a readable image ({type(exc).__name__}: {exc})") from None
    try:
        done = subprocess.run([executable, "stdin", "stdout", "-l", language], input=buffer.getvalue(),
                              capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise OCRError(f"Tesseract took longer than {TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise OCRError(f"Tesseract failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout.decode("utf-8", errors="replace")


def ocr_file(path: Path) -> str:
    return ocr_image(path.read_bytes())
