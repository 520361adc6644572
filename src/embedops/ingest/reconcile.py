"""Reconcile the ledger with the store: find (and optionally repair) drift.

Drift is what other tools let happen silently: points the ledger does not know (orphans),
chunks the ledger claims but the store lacks, and points embedded by another model.
Repair deletes only what the ledger owns: chunks of its documents beyond their chunk
count and points of another model; it forgets the documents that lost chunks, so the
next ingest embeds them again. Points of documents the ledger never wrote (vectors
upserted directly, through ``POST /points`` say) are reported as ``unknown_points`` and
deleted only with ``delete_unknown``.
"""

from __future__ import annotations

from typing import Any

from embedops.ingest.documents import chunk_ids
from embedops.ledger import Ledger
from embedops.store.protocol import VectorStore


def reconcile(store: VectorStore, ledger: Ledger | None, collection: str,
              repair: bool = False, delete_unknown: bool = False) -> dict[str, Any]:
    """Compare ledger and store for one collection; returns a JSON-able report."""
    info = store.get_collection(collection)
    docs = ledger.documents(info.name) if ledger is not None else {}
    expected = {cid: doc for doc, rec in docs.items()
                for cid in chunk_ids(doc, 0, rec.chunk_count)}
    present: set[str] = set()
    foreign: list[str] = []
    owned: set[str] = set()  # unknown chunk ids of documents the ledger knows
    for page in store.scan(info.name, page_size=2000):
        for point in page:
            present.add(point.id)
            if point.id not in expected and point.payload.get("doc_id") in docs:
                owned.add(point.id)
            if point.payload.get("fingerprint") not in (None, info.fingerprint):
                foreign.append(point.id)
    missing = sorted(set(expected) - present)
    unknown = sorted(present - set(expected))
    report: dict[str, Any] = {
        "collection": info.name, "documents": len(docs), "points": len(present),
        "missing_points": missing, "unknown_points": unknown,
        "fingerprint_mismatches": sorted(foreign),
        "ok": not (missing or unknown or foreign),
    }
    report["unowned_points"] = len(set(unknown) - owned)
    if repair and not report["ok"]:
        assert ledger is not None, "repair needs the ledger"
        doomed = set(unknown) if delete_unknown else owned
        report["repaired"] = _repair(store, ledger, info.name, expected, missing, doomed,
                                     foreign)
    return report


def _repair(store: VectorStore, ledger: Ledger, collection: str, expected: dict[str, str],
            missing: list[str], unknown: set[str], foreign: list[str]) -> dict[str, int]:
    stale_docs = sorted({expected[c] for c in missing} | {expected[c] for c in foreign
                                                           if c in expected})
    doomed = unknown | set(foreign)
    deleted = store.delete(collection, ids=sorted(doomed)) if doomed else 0
    if stale_docs:
        ledger.remove_documents(collection, stale_docs)
    return {"points_deleted": deleted, "documents_forgotten": len(stale_docs)}
