"""What gets embedded for a document, and the payload its chunks carry."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from embedops.types import Chunk, Document, content_hash

# Payload keys embedops writes itself. A metadata key of the user's with one of these
# names is kept, under ``metadata.<key>`` (filter on it as ``metadata.source``).
RESERVED_KEYS = frozenset({
    "doc_id", "chunk", "start", "end", "text", "title", "source", "content_hash",
    "last_embedded_at", "fingerprint", "metadata",
})
# Where user metadata whose key is reserved lives in a payload.
USER_METADATA_KEY = "metadata"


def embedded_text(doc: Document) -> str:
    """The title followed by the text (the BEIR convention), unless the text already
    starts with its title (a Markdown heading, an essay's first line)."""
    if doc.title and not doc.text.lstrip("# ").startswith(doc.title):
        return f"{doc.title} {doc.text}"
    return doc.text


def text_hash(doc: Document) -> str:
    return content_hash(embedded_text(doc))


def document_metadata(doc: Document) -> dict[str, Any]:
    """The payload fields that come from the document (not from embedding): the user's
    metadata at the top level, except keys embedops reserves, which move under
    ``metadata`` so that nothing the user gave is dropped."""
    meta = {k: v for k, v in doc.metadata.items() if k not in RESERVED_KEYS}
    clashing = {k: v for k, v in doc.metadata.items() if k in RESERVED_KEYS}
    if clashing:
        meta[USER_METADATA_KEY] = clashing
    meta["title"] = doc.title
    meta["source"] = doc.source
    return meta


def metadata_hash(doc: Document) -> str:
    blob = json.dumps(document_metadata(doc), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def chunk_payload(doc: Document, chunk: Chunk, digest: str, fingerprint: str,
                  embedded_at: str) -> dict[str, Any]:
    return {
        **document_metadata(doc),
        "doc_id": doc.id,
        "chunk": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "content_hash": digest,
        "last_embedded_at": embedded_at,
        "fingerprint": fingerprint,
    }


def chunk_ids(doc_id: str, start: int, stop: int) -> list[str]:
    return [f"{doc_id}#{n}" for n in range(start, stop)]
