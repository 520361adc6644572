"""Which parser a file goes to: its extension, overruled by what its first bytes say.

Content wins over the name only where the bytes are unambiguous: a binary signature
(gzip named ``.txt`` is ``binary``) or a PDF header (``%PDF-``). Otherwise the extension
decides, and an unknown extension is sniffed for an HTML start tag, else it is plain text.
HTML inside a ``.txt`` file stays text.
"""

from __future__ import annotations

import codecs
from typing import Final, Literal

from embedops.preprocess.decode import binary_signature

Kind = Literal["text", "markdown", "html", "pdf", "json", "jsonl"]
KINDS: Final[tuple[str, ...]] = ("text", "markdown", "html", "pdf", "json", "jsonl")
#: Returned by :func:`detect_kind` for bytes with a binary signature; never a parser.
BINARY: Final = "binary"

EXTENSION_KINDS: Final[dict[str, str]] = {
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

_HTML_STARTS = (b"<!doctype html", b"<html")


def detect_kind(source: str, data: bytes) -> str:
    """The kind of ``data`` named ``source``: one of :data:`KINDS`, or :data:`BINARY`."""
    if binary_signature(data) is not None:
        return BINARY
    if data[:64].lstrip().startswith(b"%PDF-"):
        return "pdf"
    kind = EXTENSION_KINDS.get(extension(source))
    if kind is not None:
        return kind
    return "html" if _starts_like_html(data) else "text"


def extension(source: str) -> str:
    """Lower-case extension of the last path component (``""`` when there is none)."""
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _starts_like_html(data: bytes) -> bool:
    head = data[:512].removeprefix(codecs.BOM_UTF8).lstrip().lower()
    return head.startswith(_HTML_STARTS)
