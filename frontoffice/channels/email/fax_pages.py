"""Page images of a received fax for the desk: a TIFF's frames with Pillow, a PDF's pages with
``pdftoppm`` (poppler-utils) when it is installed. Blocking work: callers run it in a thread."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

__all__ = ["FAX_PAGE_LIMIT", "PageRenderingUnavailable", "page_count", "render_page"]

# Pages of one fax rendered at most: a fax is a few pages; a 10,000-frame "TIFF" is an attack.
FAX_PAGE_LIMIT = 200
# Fax resolution: 204x196 dpi fine mode; 100 dpi gives a readable A4 page of about 850x1170 px.
RENDER_DPI = 100
# pdftoppm on one page of a fax-sized PDF takes well under a second; past this it is stuck.
PDFTOPPM_TIMEOUT_S = 30.0
TIFF_TYPES = frozenset({"image/tiff", "image/tif"})
PDF_TYPES = frozenset({"application/pdf"})


class PageRenderingUnavailable(Exception):
    """The page cannot be shown as an image here (no pdftoppm, or not a fax format)."""


def _is_pdf(content_type: str, data: bytes) -> bool:
    return content_type in PDF_TYPES or data[:5] == b"%PDF-"


def page_count(content_type: str, data: bytes) -> int:
    """How many pages the fax has."""
    if _is_pdf(content_type, data):
        tool = shutil.which("pdfinfo")
        if tool is None:
            raise PageRenderingUnavailable("pdfinfo/pdftoppm (poppler-utils) is not installed")
        out = subprocess.run([tool, "-"], input=data, capture_output=True, timeout=PDFTOPPM_TIMEOUT_S)
        for line in out.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("Pages:"):
                return min(int(line.split()[1]), FAX_PAGE_LIMIT)
        raise PageRenderingUnavailable("not a readable PDF")
    with Image.open(io.BytesIO(data)) as image:
        return min(getattr(image, "n_frames", 1), FAX_PAGE_LIMIT)


def render_page(content_type: str, data: bytes, page: int) -> bytes:
    """Page ``page`` (from 1) of a TIFF or PDF fax as PNG bytes."""
    if not 1 <= page <= FAX_PAGE_LIMIT:
        raise ValueError("no such page")
    if _is_pdf(content_type, data):
        tool = shutil.which("pdftoppm")
        if tool is None:
            raise PageRenderingUnavailable("pdftoppm (poppler-utils) is not installed")
        # The PDF on stdin, the page into a file: poppler 22's pdftoppm writes nothing for "-" as the
        # output root with -png (only PPM goes to stdout), so a page "rendered" to stdout was empty.
        with tempfile.TemporaryDirectory(prefix="fax-page-") as tmp:
            root = Path(tmp) / "page"
            out = subprocess.run(
                [
                    tool,
                    "-png",
                    "-r",
                    str(RENDER_DPI),
                    "-f",
                    str(page),
                    "-l",
                    str(page),
                    "-singlefile",
                    "-",
                    str(root),
                ],
                input=data,
                capture_output=True,
                timeout=PDFTOPPM_TIMEOUT_S,
            )
            png = root.with_suffix(".png")
            if out.returncode != 0 or not png.exists() or not png.stat().st_size:
                raise ValueError("no such page")
            return png.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        if page > getattr(image, "n_frames", 1):
            raise ValueError("no such page")
        image.seek(page - 1)
        frame = image.convert("L")  # faxes are 1-bit; grey scales down legibly
        buffer = io.BytesIO()
        frame.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()
