"""PDF bytes -> text with pypdf.

:func:`pdf_to_text` never raises: a broken file yields a :class:`PdfFailure` with reason
``malformed_pdf``; one that needs a password (or a crypto package that is not installed)
yields ``encrypted``. Pages join with a blank line, so each page starts a paragraph. A PDF
without a text layer (a scan) extracts to an empty string, which validation then rejects
as ``empty``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, WrongPasswordError


@dataclass(frozen=True)
class PdfText:
    """Extracted (not yet cleaned) text, the metadata title and the page count."""

    text: str
    title: str | None
    pages: int


@dataclass(frozen=True)
class PdfFailure:
    """Why no text came out: ``reason`` is ``malformed_pdf`` or ``encrypted``."""

    reason: str
    detail: str


def pdf_to_text(data: bytes) -> PdfText | PdfFailure:
    """Extract the text and title of a PDF. Never raises."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _unlock(reader):
            return PdfFailure("encrypted", "a password is needed to read this PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        return PdfText("\n\n".join(pages), _title(reader), len(pages))
    except (FileNotDecryptedError, WrongPasswordError, DependencyError) as exc:
        return PdfFailure("encrypted", f"{type(exc).__name__}: {exc}")
    # pypdf's failure modes on hostile files are open-ended (PdfReadError, but also
    # KeyError, ValueError, TypeError, RecursionError... from deep inside the parser);
    # this boundary turns every one of them into a rejection that names the exception.
    except Exception as exc:
        return PdfFailure("malformed_pdf", f"{type(exc).__name__}: {exc}"[:500])


def _unlock(reader: PdfReader) -> bool:
    """Try the empty user password (many PDFs restrict only editing, not reading)."""
    return bool(reader.decrypt(""))


def _title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    if not isinstance(title, str):
        return None
    return " ".join(title.split()) or None
