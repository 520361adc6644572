"""Reconcile the ledger with the store: find (and optionally repair) drift.

Drift is what other tools let happen silently: points the ledger does not know (orphans),
chunks the ledger claims but the store lacks, and points embedded by another model.
Repair deletes only what the ledger owns: chunks of its documents beyond their chunk
count and points of another model; it forgets the documents that lost chunks, so the
next ingest embeds them again. Points of documents the ledger never wrote (vectors
upserted directly, through ``POST /points`` say) are reported as ``unknown_points`` and
deleted only with ``delete_unknown``.

A sample check (``sample=N`` with the collection's embedder) catches what ids and
fingerprints cannot: vectors overwritten behind the ledger's back, or a model whose
output changed under the same identity. It re-embeds N stored chunks from the ledger's
content and reports as ``vector_drift`` those whose stored vector has a cosine below
``min_cosine`` with the fresh one; repair forgets their documents like those that lost
chunks, so the next ingest embeds them again.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from embedops.embedders import Embedder
from embedops.errors import ConfigError, FingerprintMismatch
from embedops.ingest.documents import chunk_ids
from embedops.ledger import Ledger
from embedops.store.protocol import EXTERNAL_MODEL, CollectionInfo, VectorStore

# The same model on the same text gives the same vector up to float noise (cosine 0.9999+
# on one backend); a vector below this was not made from this chunk by this model.
DRIFT_MIN_COSINE = 0.98


def reconcile(store: VectorStore, ledger: Ledger | None, collection: str,
              repair: bool = False, delete_unknown: bool = False, sample: int = 0,
              embedder: Embedder | None = None, min_cosine: float = DRIFT_MIN_COSINE,
              seed: int = 0) -> dict[str, Any]:
    """Compare ledger and store for one collection; returns a JSON-able report. With
    ``sample`` > 0, ``embedder`` (the collection's, same fingerprint, else
    ``FingerprintMismatch``) re-embeds that many stored chunks, chosen at random from
    ``seed``, and the report adds ``sampled_chunks`` and ``vector_drift`` (collections
    of external vectors have no model to re-embed with: no sample check)."""
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
    }
    drift: list[str] = []
    sampling = sample > 0 and ledger is not None and info.model != EXTERNAL_MODEL
    if sampling and embedder is None:
        raise ConfigError("a sample check needs the collection's embedder")
    if sampling and ledger is not None and embedder is not None:
        checked, drift = _vector_drift(store, ledger, info, embedder, sample, min_cosine,
                                       seed)
        report.update(sampled_chunks=checked, vector_drift=drift,
                      vector_drift_min_cosine=min_cosine)
    report["ok"] = not (missing or unknown or foreign or drift)
    report["unowned_points"] = len(set(unknown) - owned)
    if repair and not report["ok"]:
        assert ledger is not None, "repair needs the ledger"
        doomed = set(unknown) if delete_unknown else owned
        report["repaired"] = _repair(store, ledger, info.name, expected, missing + drift,
                                     doomed, foreign)
    return report


def _vector_drift(store: VectorStore, ledger: Ledger, info: CollectionInfo,
                  embedder: Embedder, sample: int, min_cosine: float,
                  seed: int) -> tuple[int, list[str]]:
    """(chunks checked, ids of those whose stored vector is not what ``embedder`` makes
    of the chunk's text now). Chunks whose point is missing are left to ``missing``."""
    if embedder.info.fingerprint != info.fingerprint:
        raise FingerprintMismatch(f"collection {info.name!r} holds vectors of {info.model} "
                                  f"({info.fingerprint}), not of {embedder.info.name}")
    texts = _sample_chunks(ledger, info.name, sample, seed)
    points = {p.id: p for p in store.get(info.name, list(texts), with_vectors=True)}
    ids = [cid for cid in texts if cid in points and points[cid].vector is not None]
    if not ids:
        return 0, []
    fresh = embedder.embed([texts[cid] for cid in ids], "document")
    stored = np.stack([np.asarray(points[cid].vector, dtype=np.float32) for cid in ids])
    norms = np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1)
    cosine = np.einsum("ij,ij->i", fresh, stored) / np.maximum(norms, 1e-12)
    return len(ids), sorted(cid for cid, c in zip(ids, cosine, strict=True) if c < min_cosine)


def _sample_chunks(ledger: Ledger, collection: str, sample: int,
                   seed: int) -> dict[str, str]:
    """Up to ``sample`` chunk id -> text, from documents chosen at random."""
    doc_ids = sorted(ledger.documents(collection))
    random.Random(seed).shuffle(doc_ids)
    chosen: dict[str, str] = {}
    for doc_id in doc_ids:
        doc = ledger.stored(collection, doc_id)
        if doc is None or doc.text is None or doc.modality != "text":
            continue
        for chunk in doc.chunks():
            if chunk["text"] and chunk["text"].strip():
                chosen[chunk["id"]] = chunk["text"]
            if len(chosen) >= sample:
                return chosen
    return chosen


def _repair(store: VectorStore, ledger: Ledger, collection: str, expected: dict[str, str],
            missing: list[str], unknown: set[str], foreign: list[str]) -> dict[str, int]:
    stale_docs = sorted({expected[c] for c in missing} | {expected[c] for c in foreign
                                                           if c in expected})
    doomed = unknown | set(foreign)
    deleted = store.delete(collection, ids=sorted(doomed)) if doomed else 0
    if stale_docs:
        ledger.remove_documents(collection, stale_docs)
    return {"points_deleted": deleted, "documents_forgotten": len(stale_docs)}
