"""Core value types shared by every layer: documents, chunks, rejections."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def content_hash(text: str) -> str:
    """Stable hash of the embedded content only (metadata never enters it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """A source item ready for chunking: canonical id, cleaned text, metadata."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    source: str | None = None

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
