"""Re-embed chosen documents of a collection in place (same ids, orphans removed) from
the ledger's stored content, through the one write stage, so a migration's dual-write
target gets them too."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from embedops.client import Client
from embedops.errors import EmbedOpsError, InputRejected
from embedops.ingest.batch import BatchIngest, IngestOptions, IngestSummary
from embedops.ingest.ordering import WriteGate
from embedops.ingest.sources import SourceFile
from embedops.ingest.stages import Work, classify
from embedops.ingest.targets import EmbedderPool, resolve_targets
from embedops.ingest.write import Target, write_documents
from embedops.ledger import Ledger, StoredDocument
from embedops.ledger.claims import Claims, retry_pauses
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.store.protocol import VectorStore, room_waits_deferred
from embedops.types import Document

PAGE = 64
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` as a timedelta; InputRejected otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise InputRejected("duration", f"{text!r} is not a duration such as 90s, 30m, "
                            "12h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_time(text: str) -> datetime:
    """An ISO date or date-time (UTC when no zone is given); InputRejected otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputRejected("time", f"{text!r} is not an ISO date or date-time such as "
                            "2026-11-30 or 2026-11-30T08:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select_by_time(ledger: Ledger, collection: str, changed_since: datetime | None = None,
                   older_than: timedelta | None = None) -> list[str]:
    """Documents by ``last_embedded_at``: embedded at or after ``changed_since``, and/or
    embedded longer ago than ``older_than``."""
    cutoff = datetime.now(UTC) - older_than if older_than is not None else None
    chosen = []
    for doc_id, record in ledger.documents(collection).items():
        when = datetime.fromisoformat(record.last_embedded_at)
        if changed_since is not None and when < changed_since:
            continue
        if cutoff is not None and when >= cutoff:
            continue
        chosen.append(doc_id)
    return sorted(chosen)


def reembed_documents(client: Client, collection: str, doc_ids: Iterable[str],
                      pool: EmbedderPool | None = None,
                      lock: AbstractContextManager[Any] | None = None,
                      skip_missing: bool = False) -> IngestSummary:
    """Embed ``doc_ids`` again from their stored content, whether or not anything
    changed; returns the ingest summary.

    Each page of documents is claimed first (``ledger.claims``), as an ingest run
    claims its batches: a document another live run is embedding right now is left to
    it and re-embedded once its claim is gone (from the content that run committed).
    ``lock`` (the service's write gate) is held for each page, from reading its stored
    content to writing it, so no other write of the process lands in between; a write
    that fills the store's pending segment waits for room after it is released. Other
    writers may change the collection while the lock is free, so each page resolves
    ``collection`` and its dual-write targets again under it: a page claimed under a
    name the collection no longer has (renamed behind an alias by ``migrate start``) is
    claimed again under the new one, and with ``skip_missing`` a document no longer in
    the ledger (deleted since it was chosen) is skipped rather than dead-lettered.
    """
    lock = lock if lock is not None else nullcontext()
    assert client.ledger is not None
    ledger, store = client.ledger, client.store
    pool = pool or EmbedderPool(client.settings)
    summary = IngestSummary(collection=store.get_collection(collection).name)
    claims = Claims(ledger, client.settings.claim_ttl_s)
    waiting, pauses = list(dict.fromkeys(doc_ids)), retry_pauses()
    while waiting:
        held_elsewhere: list[str] = []
        for start in range(0, len(waiting), PAGE):
            page = waiting[start : start + PAGE]
            name = store.get_collection(collection).name
            with claims.holding(name, page) as held, room_waits_deferred(store), lock:
                targets = resolve_targets(store, pool, collection, ledger)
                if targets[0].name != name:  # (renamed since the claim: again)
                    held_elsewhere += page
                    continue
                held_elsewhere += [doc_id for doc_id in page if doc_id not in held]
                _reembed_page(store, ledger, targets, [d for d in page if d in held],
                              summary, skip_missing)
        waiting = held_elsewhere
        if waiting:
            time.sleep(next(pauses))
    return summary


def _reembed_page(store: VectorStore, ledger: Ledger, targets: list[Target],
                  page: list[str], summary: IngestSummary, skip_missing: bool) -> None:
    primary = targets[0]
    previous = ledger.documents(primary.name, page)
    works = []
    for doc_id in page:
        stored = ledger.stored(primary.name, doc_id)
        if stored is None and skip_missing:
            continue
        if stored is None or stored.text is None:
            reason = "not in the ledger" if stored is None else "no stored content"
            ledger.record_dead_letter(primary.name, doc_id, None, "reembed", "no_content",
                                      f"cannot re-embed {doc_id}: {reason}")
            summary.documents_failed += 1
            continue
        works.append(_forced(stored, previous.get(doc_id), primary.chunker))
    result = write_documents(store, ledger, targets, works,
                             _failure(ledger, primary.name, summary))
    summary.documents_changed += len(result.committed)
    summary.chunks_embedded += result.chunks_embedded
    summary.chunks_deleted += result.chunks_deleted


def _forced(stored: StoredDocument, previous: object, chunker: object) -> Work:
    assert stored.text is not None
    doc = Document(stored.doc_id, stored.text, dict(stored.metadata), stored.title,
                   stored.source, stored.modality)
    work = classify(doc, None, chunker, lambda: None)  # type: ignore[arg-type]
    work.status, work.previous = "changed", previous  # type: ignore[assignment]
    return work


def _failure(ledger: Ledger, collection: str, summary: IngestSummary):  # type: ignore[no-untyped-def]
    def record(work: Work, stage: str, reason: str, detail: str) -> None:
        ledger.record_dead_letter(collection, work.doc.id, work.doc.source, stage, reason,
                                  detail)
        summary.documents_failed += 1

    return record


def reread_files(client: Client, collection: str,
                 files: dict[str, tuple[str, dict[str, Any]]],
                 gate: WriteGate | None = None,
                 into: list[IngestSummary] | None = None) -> list[IngestSummary]:
    """Ingest changed source files again (each with its root, read with the options it
    was ingested with): changed documents are re-embedded, unchanged ones skipped.
    ``gate`` orders the runs against the process's other writes, a batch at a time
    (``BatchIngest``). Each run's summary is appended to ``into`` (a new list by
    default), which is returned; a run that fails appends what it committed before
    the error, so a caller that reads the files again after one (a collection renamed
    meanwhile) still counts the documents the first attempt re-embedded."""
    assert client.ledger is not None
    groups: dict[str, list[SourceFile]] = defaultdict(list)
    for path, (root, options) in sorted(files.items()):
        groups[json.dumps(options, sort_keys=True)].append(SourceFile(Path(path), Path(root)))
    runs = [] if into is None else into
    for options_text, sources in groups.items():
        preprocess = _options(json.loads(options_text), client)
        options = IngestOptions(collection=collection, reread_unchanged=True,
                                preprocess=preprocess)
        job = BatchIngest(client.store, client.ledger, client.settings, options, gate=gate)
        try:
            job.run_files(sources)
        finally:  # (committed batches are counted as they commit: ``job.summary``)
            runs.append(job.summary)
    return runs


def _options(recorded: dict[str, Any], client: Client) -> PreprocessOptions:
    try:
        return PreprocessOptions(**recorded)
    except (TypeError, EmbedOpsError):
        return PreprocessOptions.from_settings(client.settings)


def merge(summaries: Sequence[IngestSummary], collection: str) -> IngestSummary:
    """One summary of several runs (the counters added up)."""
    total = IngestSummary(collection=collection)
    for s in summaries:
        for key in ("documents_new", "documents_changed", "documents_unchanged",
                    "documents_metadata_updated", "documents_failed", "documents_deleted",
                    "chunks_embedded", "chunks_deleted"):
            setattr(total, key, getattr(total, key) + getattr(s, key))
        total.seconds += s.seconds
    total.chunks_per_second = round(total.chunks_embedded / max(total.seconds, 1e-9), 2)
    return total
