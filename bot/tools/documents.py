"""Documents read as text: PDF (its text layer, by pypdf) and Word .docx (python-docx).

Used for files attached to a message and for PDFs that fetch_url reads. A scanned PDF has no text
layer: that is said plainly rather than passed on as an empty document.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from bot.messages import Attachment

PDF_TYPES = ("application/pdf",)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCX_EXPANSION = 20  # a .docx is a zip: its parts may unpack to at most this many times its size


class UnreadableDocument(Exception):
    """The document cannot be read as text; the message says why, for the person who sent it."""


def is_document(attachment: Attachment) -> bool:
    """Whether a file claims to be a PDF or a .docx (its bytes are checked when read)."""
    kind = attachment.content_type.split(";")[0].strip().lower()
    suffix = PurePath(attachment.name).suffix.lower()
    return kind in (*PDF_TYPES, DOCX_TYPE) or suffix in (".pdf", ".docx")


def document_text(name: str, data: bytes, max_pages: int) -> str:
    """The text of a PDF (its first `max_pages` pages) or a .docx; UnreadableDocument when there is none."""
    if data.startswith(b"%PDF-"):
        text = pdf_text(data, max_pages, name)
    elif data.startswith(b"PK"):
        text = docx_text(name, data)
    else:
        raise UnreadableDocument(f"{name} is neither a PDF nor a Word .docx file.")
    if not text.strip():
        raise UnreadableDocument(
            f"{name} has no text I can read: a scanned PDF (pictures of pages) has no text layer. "
            "Send a PDF with selectable text, or paste the text."
        )
    return text


def pdf_text(data: bytes, max_pages: int | None = None, name: str = "the PDF") -> str:
    """A PDF's text layer, page by page; pages past `max_pages` are left out with a note."""
    import pypdf  # imported at the first PDF: it loads Pillow, heavy for a bot that never reads one

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument(f"{name} is encrypted; send it without a password.")
        pages = reader.pages
        count = len(pages)
        shown = count if max_pages is None else min(count, max_pages)
        text = "\n\n".join(pages[i].extract_text() or "" for i in range(shown))
    except pypdf.errors.PyPdfError:
        raise UnreadableDocument(f"{name} could not be read as a PDF (damaged?).") from None
    if shown < count and text.strip():
        text += f"\n\n[…the other {count - shown} of its {count} pages were left out (MAX_DOCUMENT_PAGES)]"
    return text


def docx_text(name: str, data: bytes) -> str:
    """A .docx's paragraphs and table cells, in order, once its unpacked size is checked."""
    import docx  # imported at the first .docx: python-docx and lxml are heavy for a bot that never reads one

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > DOCX_EXPANSION * max(len(data), 2**20):
            raise UnreadableDocument(f"{name} unpacks to {unpacked / 2**20:.0f} MB; that is more than I read.")
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise UnreadableDocument(f"{name} could not be read as a Word .docx file.") from None
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        lines += [" | ".join(cell.text for cell in row.cells) for row in table.rows]
    return "\n".join(lines)
