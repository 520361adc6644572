"""The steps of the write stage: classify a document against the ledger, embed its
chunks (isolating bad documents), build the points, and the ledger record.

``ingest/write.py`` composes them into the one write stage that every writer calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedops.embedders import Embedder
from embedops.errors import EmbedderError
from embedops.ingest.chunking import Chunker
from embedops.ingest.documents import (
    chunk_ids,
    chunk_payload,
    document_metadata,
    embedded_text,
    metadata_hash,
    text_hash,
)
from embedops.ledger import DocContent, DocRecord
from embedops.preprocess.media import media_content_hash
from embedops.store.protocol import VectorStore
from embedops.types import Chunk, Document

# Payload keys a metadata-only update never removes.
FIXED_PAYLOAD_KEYS = frozenset({"doc_id", "chunk", "start", "end", "text", "content_hash",
                                "last_embedded_at", "fingerprint"})


@dataclass
class Work:
    """One document on its way to the store. ``status``: new | changed | metadata |
    unchanged. ``read_mark`` is the write clock when its content was read (real-time
    ordering; 0 when unused)."""

    doc: Document
    status: str
    digest: str
    meta_digest: str
    previous: DocRecord | None
    chunks: list[Chunk] = field(default_factory=list)
    read_mark: int = 0
    plan: str = ""
    # (absolute path, root) of the file the document came from, for dead letters
    origin: tuple[str, str] | None = None


# Called with (work, stage, reason, detail) when a document cannot be embedded.
OnFailure = Callable[[Work, str, str, str], None]
# (stage, reason, detail) of a document that could not be prepared or embedded
Failure = tuple[str, str, str]


def classify(doc: Document, previous: DocRecord | None, chunker: Chunker,
             before_chunking: Callable[[], object]) -> Work:
    """Compare ``doc`` with its ledger record; chunk it only when its content (or the
    chunking plan) changed. A media document's content hash is that of its decoded
    pixels or samples, so re-encoding the same content is not a change."""
    digest = text_hash(doc) if doc.modality == "text" else media_content_hash(doc)
    meta_digest = metadata_hash(doc)
    if (previous is not None and previous.content_hash == digest
            and previous.plan == chunker.plan):
        status = "unchanged" if previous.meta_hash == meta_digest else "metadata"
        return Work(doc, status, digest, meta_digest, previous, plan=chunker.plan)
    work = Work(doc, "changed" if previous else "new", digest, meta_digest, previous,
                plan=chunker.plan)
    if doc.modality == "text":
        before_chunking()
        work.chunks = chunker.chunk(doc.id, embedded_text(doc))
    else:  # one media item is one chunk; its caption (if any) rides along as text
        work.chunks = [Chunk(doc.id, 0, doc.text, 0, len(doc.text), 0, doc.modality)]
    return work


def embed_isolating_failures(embedder: Embedder, works: list[Work],
                             on_failure: OnFailure) -> list[tuple[Work, np.ndarray]]:
    """Embed all chunks at once; if that fails, one document at a time, so one bad
    document becomes a failure (``on_failure``) instead of failing the batch. Documents
    without chunks fail at the ``chunk`` stage. Text chunks embed their text, media
    chunks the bytes of their document; a media document without its bytes (one
    rebuilt from the ledger, which keeps no media bytes) fails as ``no_content`` rather
    than being embedded from its caption."""
    kept = []
    info = embedder.info
    for work in works:
        if not info.accepts("document", work.doc.modality):
            accepted = ", ".join(info.inputs.get("document", ()))
            on_failure(work, "embed", "unsupported_modality",
                       f"{info.name} embeds {accepted} documents, not {work.doc.modality}")
        elif work.doc.modality != "text" and work.doc.data is None:
            on_failure(work, "embed", "no_content",
                       f"the {work.doc.modality} itself is not kept in the ledger: ingest "
                       "its source file again to embed it")
        elif work.chunks:
            kept.append(work)
        else:
            on_failure(work, "chunk", "no_tokens", "the tokenizer found no tokens")
    if not kept:
        return []
    try:
        matrix = embedder.embed([item for w in kept for item in _inputs(w)], "document")
    except EmbedderError:
        return [pair for w in kept if (pair := _embed_one(embedder, w, on_failure))]
    out, row = [], 0
    for work in kept:
        out.append((work, matrix[row : row + len(work.chunks)]))
        row += len(work.chunks)
    return out


def _embed_one(embedder: Embedder, work: Work,
               on_failure: OnFailure) -> tuple[Work, np.ndarray] | None:
    try:
        return work, embedder.embed(_inputs(work), "document")
    except EmbedderError as exc:
        on_failure(work, "embed", exc.code, exc.message)
        return None


def _inputs(work: Work) -> list[str | bytes]:
    """What the model embeds for each chunk of ``work``."""
    if work.doc.modality == "text" or work.doc.data is None:  # no bytes: refused above
        return [c.text for c in work.chunks]
    return [work.doc.data for _ in work.chunks]


def build_points(embedded: Sequence[tuple[Work, np.ndarray]], fingerprint: str,
                 now: str) -> tuple[list[str], np.ndarray | None, list[dict[str, Any]]]:
    """Ids, stacked vectors (None when empty) and payloads of every embedded chunk."""
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    payloads: list[dict[str, Any]] = []
    for work, matrix in embedded:
        for chunk, vector in zip(work.chunks, matrix, strict=True):
            ids.append(chunk.id)
            vectors.append(vector)
            payloads.append(chunk_payload(work.doc, chunk, work.digest, fingerprint, now))
    return ids, (np.vstack(vectors) if vectors else None), payloads


def orphan_ids(works: Sequence[Work]) -> list[str]:
    """Chunk ids a shrunken document no longer has (``doc#n`` for n >= new count)."""
    orphans: list[str] = []
    for work in works:
        if work.previous and work.previous.chunk_count > len(work.chunks):
            orphans += chunk_ids(work.doc.id, len(work.chunks), work.previous.chunk_count)
    return orphans


def update_metadata(store: VectorStore, collection: str, work: Work) -> None:
    """Payload-only change: patch the chunks' payloads, never their vectors. Keys the
    document no longer has are removed (RFC 7396 ``None``)."""
    assert work.previous is not None
    ids = chunk_ids(work.doc.id, 0, work.previous.chunk_count)
    patch: dict[str, object] = dict(document_metadata(work.doc))
    old = store.get(collection, ids[:1])
    if old:
        patch.update({k: None for k in old[0].payload
                      if k not in patch and k not in FIXED_PAYLOAD_KEYS})
    store.update_payload(collection, patch, ids=ids)


def doc_record(work: Work, fingerprint: str, now: str) -> DocRecord:
    """The ledger record of a document once its points are in the store, with the
    content to keep (a metadata-only change keeps the stored chunk spans)."""
    doc = work.doc
    spans = None if work.status == "metadata" else [(c.start, c.end, c.tokens)
                                                     for c in work.chunks]
    content = DocContent(embedded_text(doc), dict(doc.metadata), doc.title, spans,
                         doc.modality)
    if work.status == "metadata":
        assert work.previous is not None
        return DocRecord(doc.id, work.digest, work.meta_digest, work.previous.chunk_count,
                         doc.source, work.previous.fingerprint,
                         work.previous.last_embedded_at, work.previous.plan, content)
    return DocRecord(doc.id, work.digest, work.meta_digest, len(work.chunks), doc.source,
                     fingerprint, now, work.plan, content)
