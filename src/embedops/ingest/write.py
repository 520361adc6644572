"""The one write stage: embed documents and commit them to one or several collections.

Every writer calls :func:`write_documents` — the batch driver, the real-time worker, a
migration's dual-write and the re-embedding of stale documents — so a document written
by any of them gets the same ids, vectors, payloads, ledger record and stored content.

Per target collection, in this order: embed the new and changed documents' chunks with
the target's own embedder (document role), upsert their points (in slices of
``UPSERT_SLICE``), delete the chunks a
shrunken document no longer has, patch the payloads of metadata-only changes, then
commit the documents (with their content) to the ledger. A crash before the ledger
commit leaves documents the ledger does not know, which the next run writes again under
the same ids (idempotent).

The first target is the one the caller's documents were classified against (its ledger
records decide new / changed / metadata / unchanged). Every further target receives the
documents the first one wrote, classified against its own records and chunked with its
own tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from embedops.embedders import Embedder
from embedops.ingest.chunking import Chunker
from embedops.ingest.documents import chunk_ids
from embedops.ingest.stages import (
    OnFailure,
    Work,
    build_points,
    classify,
    doc_record,
    embed_isolating_failures,
    orphan_ids,
    update_metadata,
)
from embedops.ledger import Ledger
from embedops.ledger.ledger import utc_now
from embedops.payload_schema import FieldSpec, SchemaViolation, apply_schema
from embedops.store.protocol import CollectionInfo, VectorStore

# Points per store transaction. A search on the same store handle waits for a write in
# progress, so a large document (a thousand chunks: ~0.2-0.4 s of SQLite work and fsync
# in one transaction) is written in slices that a search can slip between.
UPSERT_SLICE = 256


@dataclass(frozen=True)
class Target:
    """A collection to write, with the embedder and chunker of its model."""

    info: CollectionInfo
    embedder: Embedder
    chunker: Chunker

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class WriteResult:
    """What the first target committed (the caller's documents)."""

    committed: list[Work] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_deleted: int = 0


def write_documents(store: VectorStore, ledger: Ledger, targets: Sequence[Target],
                    works: list[Work], on_failure: OnFailure) -> WriteResult:
    """Write ``works`` (classified against ``targets[0]``) to every target. Documents
    that cannot be embedded go to ``on_failure`` for the first target and to that
    target's dead letters for the others; they never fail the batch."""
    if not targets:
        raise ValueError("write_documents needs at least one target")
    primary, *others = targets
    result = _write_target(store, ledger, primary, works, on_failure)
    written = [w for w in result.committed if w.status != "unchanged"]
    for target in others:
        _write_target(store, ledger, target, reclassify(ledger, target, written),
                      _dead_letters_of(ledger, target.name))
    return result


def reclassify(ledger: Ledger, target: Target, works: Sequence[Work]) -> list[Work]:
    """``works``' documents classified against ``target``'s ledger records and chunked
    with its tokenizer."""
    previous = ledger.documents(target.name, [w.doc.id for w in works])
    return [classify(w.doc, previous.get(w.doc.id), target.chunker, lambda: None)
            for w in works]


def _write_target(store: VectorStore, ledger: Ledger, target: Target, works: list[Work],
                  on_failure: OnFailure) -> WriteResult:
    fingerprint = target.info.fingerprint
    works = _with_declared_fields(ledger.payload_fields(target.name), works, on_failure)
    to_embed = [w for w in works if w.status in ("new", "changed")]
    embedded = embed_isolating_failures(target.embedder, to_embed, on_failure)
    now = utc_now()
    ids, vectors, payloads = build_points(embedded, fingerprint, now)
    if vectors is not None:
        for lo in range(0, len(ids), UPSERT_SLICE):
            hi = lo + UPSERT_SLICE
            store.upsert(target.name, ids[lo:hi], vectors[lo:hi], payloads[lo:hi],
                         fingerprint=fingerprint)
    orphans = orphan_ids([w for w, _ in embedded])
    deleted = store.delete(target.name, ids=orphans) if orphans else 0
    updated = [w for w in works if w.status == "metadata"]
    for work in updated:
        update_metadata(store, target.name, work)
    done = [w for w, _ in embedded] + updated
    ledger.commit_documents(target.name, [doc_record(w, fingerprint, now) for w in done])
    return WriteResult(done, len(ids), deleted)


def _with_declared_fields(fields: Sequence[FieldSpec], works: list[Work],
                          on_failure: OnFailure) -> list[Work]:
    """Works whose metadata fits the collection's declared fields, defaults filled in;
    a document with a field of the wrong type fails (``schema_violation``), unwritten."""
    if not fields:
        return works
    kept = []
    for work in works:
        if work.status == "unchanged":
            kept.append(work)
            continue
        try:
            metadata = apply_schema(fields, work.doc.metadata)
        except SchemaViolation as exc:
            on_failure(work, "validate", "schema_violation", exc.message)
            continue
        work.doc = replace(work.doc, metadata=metadata)
        kept.append(work)
    return kept


def _dead_letters_of(ledger: Ledger, collection: str) -> OnFailure:
    def record(work: Work, stage: str, reason: str, detail: str) -> None:
        ledger.record_dead_letter(collection, work.doc.id, work.doc.source, stage, reason,
                                  detail)

    return record


def delete_documents(store: VectorStore, ledger: Ledger, collections: Sequence[str],
                     doc_ids: Sequence[str]) -> int:
    """Remove documents (every chunk) from each collection and from its ledger records;
    returns the points removed from the first one."""
    removed = 0
    for n, name in enumerate(collections):
        records = ledger.documents(name, doc_ids)
        ids = [i for r in records.values() for i in chunk_ids(r.doc_id, 0, r.chunk_count)]
        count = store.delete(name, ids=ids) if ids else 0
        # points of a document the ledger never committed (a crash mid-write) go too
        for doc_id in doc_ids:
            if doc_id not in records:
                count += store.delete(name, filter={"field": "doc_id", "eq": doc_id})
        ledger.remove_documents(name, list(doc_ids))
        removed = count if n == 0 else removed
    return removed
