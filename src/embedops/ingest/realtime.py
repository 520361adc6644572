"""The real-time driver: drains the ledger's durable queue (outbox) through the same
preprocess -> chunk -> embed -> upsert -> ledger commit stages as the batch path.

One worker thread per serving process. It gathers up to ``max_batch`` queued writes,
waiting at most ``max_wait_ms`` after the first for more (dynamic micro-batching), and
processes them per collection under the process's :class:`WriteGate`. For each document
only its newest accepted version is applied; older queued versions are dropped as
superseded. The store is written before the ledger and the queue rows are deleted last,
so a crash at any moment leaves the writes queued and the next run repeats them under
the same chunk ids (idempotent).

Several serving processes (replicas on one shared ledger) drain one outbox. Before a
worker applies a document's queued writes it *claims* the document in the ledger
(``ledger/claims.py``, the same claims the batch path takes), then re-reads that
document's queued writes: a document is applied by one process at a time, so two writes
to it are applied in version order whichever replica accepted them, and no write is
embedded twice. Documents other processes hold are left to them; a dead process's claims
are taken over (``Claims``). A worker looks at the outbox every ``realtime_poll_s``, and
at once when its own process queues a write or, on a PostgreSQL ledger, when any
process does (``LISTEN``/``NOTIFY``).

Documents are prepared (decoded, cleaned, chunked) by ``ingest/preparation.py``: large
ones in a child process, so their preparation never holds up queries.

The model is shared with the queries of the serving process: the worker's embedder
takes it one forward pass at a time, at background priority (``ingest/targets.py``). A
document with more than ``server_max_document_chunks`` chunks fails before it reaches
the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from embedops.config import Settings
from embedops.errors import EmbedOpsError, StoreError
from embedops.ingest.ordering import WriteGate
from embedops.ingest.preparation import DocumentPreparer, document_from_body
from embedops.ingest.stages import Work
from embedops.ingest.targets import EmbedderPool, lower_priority, resolve_targets
from embedops.ingest.write import Target, delete_documents, write_documents
from embedops.ledger import Ledger
from embedops.ledger.claims import Claims
from embedops.ledger.outbox import OutboxEntry, Outcome
from embedops.metrics import Metrics
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.store.protocol import VectorStore, room_waits_deferred
from embedops.types import Document

__all__ = ["RealtimeWorker", "document_from_body"]

MAX_ATTEMPTS = 5
_log = logging.getLogger(__name__)


class RealtimeWorker:
    """Drains the outbox in a background thread. ``wake()`` after enqueueing."""

    def __init__(self, store: VectorStore, ledger: Ledger, gate: WriteGate,
                 pool: EmbedderPool, settings: Settings, metrics: Metrics) -> None:
        self.store, self.ledger, self.gate, self.pool = store, ledger, gate, pool
        self.settings, self.metrics = settings, metrics
        self.options = PreprocessOptions.from_settings(settings)
        self.preparer = DocumentPreparer(self.options,
                                         settings.realtime_prepare_process_bytes,
                                         settings.realtime_prepare_timeout_s)
        self.claims = Claims(ledger, settings.claim_ttl_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="embedops-realtime",
                                        daemon=True)
        self._thread.start()
        listen = getattr(self.ledger, "listen_outbox", None)
        if listen is not None:  # a PostgreSQL ledger: woken by other replicas' writes
            listen(self.wake, self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.preparer.close()

    def wake(self) -> None:
        self._wake.set()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        lower_priority(self.settings.background_nice)
        while not self._stop.is_set():
            self._wake.wait(timeout=self.settings.realtime_poll_s)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.drain_once():
                    pass
            except EmbedOpsError as exc:  # counted in the metrics; the rows stay queued
                self.metrics.realtime_errors.labels(exc.code).inc()
                self._stop.wait(0.5)
            except Exception:  # a bug or an untranslated library error must not end the
                # worker (the queue would silently stop draining): log, count, back off
                _log.exception("real-time worker iteration failed; retrying")
                self.metrics.realtime_errors.labels("internal").inc()
                self._stop.wait(1.0)

    def drain_once(self) -> int:
        """Process one micro-batch; returns how many queued writes it took (0: the queue
        is empty, or every queued document is being applied by another process)."""
        limit = self.settings.realtime_max_batch
        queued = self._next(limit)
        if not queued:
            return 0
        if len(queued) < limit and self.settings.realtime_max_wait_ms > 0:
            self._stop.wait(self.settings.realtime_max_wait_ms / 1000.0)
            queued = self._next(limit)
        by_collection: dict[str, list[str]] = {}
        for collection, doc_id in queued:
            by_collection.setdefault(collection, []).append(doc_id)
        taken, failed = 0, False
        for collection, doc_ids in by_collection.items():
            with self.gate.lock:
                held = self.claims.take(collection, doc_ids)
                # re-read after claiming: another process may have applied some meanwhile
                mine = self.ledger.entries_for(collection, sorted(held)) if held else []
            # (a write that fills the store's pending segment waits for room once the gate
            # and the claims are released: see ordering)
            with room_waits_deferred(self.store):
                try:
                    if mine:
                        self.metrics.realtime_batch_size.observe(len(mine))
                        failed |= not self._process_guarded(collection, mine)
                finally:
                    if held:
                        with self.gate.lock:
                            self.claims.release(collection, held)
            taken += len(mine)
        if failed:  # failed writes stay queued with one more attempt: back off a little
            self._stop.wait(0.5)
        return taken

    def _next(self, limit: int) -> list[tuple[str, str]]:
        """(collection, doc_id) of the oldest queued writes."""
        with self.gate.lock:  # the gate's ledger handle is used under its lock only
            return self.ledger.queued_documents(limit)

    def _process_guarded(self, collection: str, entries: list[OutboxEntry]) -> bool:
        """Process a group; on failure retry its writes one at a time, so one bad write
        fails alone (after ``MAX_ATTEMPTS``) instead of taking its neighbours with it.
        Returns False when some write failed this time."""
        try:
            with self.gate.lock:
                self._process(collection, entries)
            return True
        except EmbedOpsError as exc:
            if len(entries) > 1:
                results = [self._process_guarded(collection, [e]) for e in entries]
                return all(results)
            self.metrics.realtime_errors.labels(exc.code).inc()
            (entry,) = entries
            with self.gate.lock:
                self.ledger.touch_attempts([entry.seq])
                if entry.attempts + 1 >= MAX_ATTEMPTS:
                    outcome = Outcome(entry.doc_id, entry.seq, "failed",
                                      f"{exc.code}: {exc.message}")
                    self.gate.record(collection, [outcome], [entry.seq])
            return False

    def _process(self, collection: str, entries: list[OutboxEntry]) -> None:
        """Apply the newest version of each document among ``entries``."""
        versions = self.ledger.latest_versions(collection, [e.doc_id for e in entries])
        newest: dict[str, OutboxEntry] = {}
        for entry in entries:
            latest, applied = versions.get(entry.doc_id, (entry.seq, 0))
            if entry.seq >= latest and entry.seq > applied:
                newest[entry.doc_id] = entry
        self.metrics.realtime_documents.labels("superseded").inc(len(entries) - len(newest))
        outcomes = self._apply(collection, list(newest.values()))
        self.gate.record(collection, outcomes, [e.seq for e in entries])
        now = time.time()
        for outcome in outcomes:
            self.metrics.realtime_documents.labels(outcome.status).inc()
            if outcome.status == "embedded":
                self.metrics.realtime_lag.observe(now - newest[outcome.doc_id].enqueued_ts)

    def _apply(self, collection: str, entries: list[OutboxEntry]) -> list[Outcome]:
        """Apply puts and deletes to the collections ``collection`` resolves to now (an
        alias is resolved here, when the write is applied, not when it was queued)."""
        try:
            targets = resolve_targets(self.store, self.pool, _requested(collection, entries),
                                      self.ledger)
        except StoreError as exc:
            if exc.code != "collection_not_found":
                raise
            return [Outcome(e.doc_id, e.seq, "deleted") if e.op == "delete"
                    else Outcome(e.doc_id, e.seq, "failed", exc.code) for e in entries]
        deletes = [e for e in entries if e.op == "delete"]
        if deletes:
            delete_documents(self.store, self.ledger, [t.name for t in targets],
                             [e.doc_id for e in deletes])
        outcomes = [Outcome(e.doc_id, e.seq, "deleted") for e in deletes]
        puts = [e for e in entries if e.op == "put"]
        return outcomes + (self._put(targets, puts) if puts else [])

    def _put(self, targets: list[Target], entries: list[OutboxEntry]) -> list[Outcome]:
        primary = targets[0]
        failures: dict[str, str] = {}
        record_failure = self._failure_recorder(primary.name, failures)
        previous = self.ledger.documents(primary.name, [e.doc_id for e in entries])
        works: list[Work] = []
        for entry in entries:
            work = self.preparer.prepare(entry.doc_id, entry.body, previous.get(entry.doc_id),
                                         primary.chunker)
            if isinstance(work, tuple):
                record_failure(Work(Document(entry.doc_id, ""), "new", "", "", None), *work)
                continue
            if len(work.chunks) > self.settings.server_max_document_chunks:
                record_failure(work, "chunk", "too_many_chunks", self._too_many(work))
                continue
            works.append(work)
        write_documents(self.store, self.ledger, targets, works, record_failure)
        return [Outcome(e.doc_id, e.seq, "failed", failures[e.doc_id])
                if e.doc_id in failures else Outcome(e.doc_id, e.seq, "embedded")
                for e in entries]

    def _too_many(self, work: Work) -> str:
        limit = self.settings.server_max_document_chunks
        return (f"{len(work.chunks)} chunks; a document may have at most {limit} "
                "(server_max_document_chunks)")

    def _failure_recorder(self, collection: str,
                          failures: dict[str, str]) -> Callable[[Work, str, str, str], None]:
        def record(work: Work, stage: str, reason: str, detail: str) -> None:
            self.ledger.record_dead_letter(collection, work.doc.id, work.doc.id, stage,
                                           reason, detail)
            failures[work.doc.id] = f"{stage}: {reason}" + (f" ({detail})" if detail else "")

        return record


def _requested(collection: str, entries: list[OutboxEntry]) -> str:
    """The name the writes were addressed to: an alias they were queued through (kept in
    the body), else the collection."""
    names = {e.body.get("alias") for e in entries if e.op == "put"} - {None}
    return str(names.pop()) if len(names) == 1 else collection
