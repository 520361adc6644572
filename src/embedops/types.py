"""Core value types shared by every layer: documents, chunks, rejections."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def content_hash(text: str) -> str:
    """Stable hash of the embedded content only (metadata never enters it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MODALITIES: tuple[str, ...] = ("text", "image", "audio")


@dataclass(frozen=True)
class Document:
    """A source item ready for chunking: canonical id, content, metadata.

    ``modality`` says what the content is. A text document carries ``text``; an image or
    audio document carries its decoded bytes in ``data`` (or a ``uri``) and, optionally,
    a caption or transcript in ``text``. The pipeline routes each document to an embedder
    that accepts its modality."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    source: str | None = None
    modality: str = "text"
    data: bytes | None = None
    uri: str | None = None

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document that gets one vector.

    ``start``/``end`` are a char span into the document's cleaned text, so
    ``doc_text[start:end] == text`` always holds.
    """

    doc_id: str
    index: int
    text: str
    start: int
    end: int
    tokens: int
    modality: str = "text"

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.index}"


@dataclass(frozen=True)
class Rejection:
    """Why an input cannot be embedded. ``reason`` is machine-readable; ``stage`` says where."""

    source: str
    reason: str
    stage: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason, "stage": self.stage,
                "detail": self.detail}
