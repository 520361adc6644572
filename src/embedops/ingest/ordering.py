"""Ordering of writes to one store from the batch and the real-time path.

Both paths run in the process that owns the store (one writer per store). Every write
gets a version from the ledger's write clock: a real-time write when it is queued, a
batch document when it is written, provided no write was accepted after the batch read
its content. All store writes go through ``WriteGate.lock``, and a write whose version is
older than the document's newest accepted version is skipped, so the last accepted write
wins and each chunk id stays one point. A write that fills the embedded store's pending
segment waits for room after the lock is released (``room_waits_deferred``): the order is
settled under the lock, and the wait throttles the writer that made it (the HTTP request,
the real-time worker's micro-batch, the batch flush, the migration's backfill batch), not
the writes queued behind the lock. The stale re-embed job (``jobs.kinds.reembed_stale``)
holds it a batch of a re-read file (admitted as the batch path's are) or a page of
documents at a time, not for its whole run; the ``backfill`` job a page of payload
updates at a time (``freshness.fields.paged_update``). A migration's backfill batch is
embedded before it takes the gate and checks under it which of its documents changed
meanwhile (``Migrations._backfill_batch``). The segment's bound becomes ``PENDING_MAX``
plus one write per writer thread past the gate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from embedops.ingest.stages import Work
from embedops.ledger import Ledger
from embedops.ledger.outbox import Outcome

# Called with (collection, outcomes) after outcomes are durable.
Listener = Callable[[str, Sequence[Outcome]], None]


class WriteGate:
    """Serialises store writes of one process and hands out document versions."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lock = threading.RLock()
        self._granted: dict[tuple[str, str], int] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` after every recorded outcome (from any thread)."""
        self._listeners.append(listener)

    def read_mark(self) -> int:
        """Take before reading a document's content (see ``admit``)."""
        return self.ledger.read_mark()

    def admit(self, collection: str, works: Sequence[Work]) -> tuple[list[Work], dict[str, int]]:
        """The batch works that may be written, and their versions. A work whose document
        got a write accepted after ``work.read_mark`` is dropped: that write is newer.
        Call with ``lock`` held, and write the admitted works before releasing it."""
        granted = self.ledger.claim(collection, {w.doc.id: w.read_mark for w in works})
        for doc_id, version in granted.items():
            self._granted[(collection, doc_id)] = version
        return [w for w in works if w.doc.id in granted], granted

    def applied(self, collection: str, versions: dict[str, int],
                status: str = "embedded") -> None:
        """Record admitted batch documents as written."""
        outcomes = [Outcome(d, v, status) for d, v in versions.items()]
        for doc_id in versions:
            self._granted.pop((collection, doc_id), None)
        self.record(collection, outcomes)

    def failed(self, collection: str, doc_id: str, reason: str) -> None:
        """Record an admitted batch document as failed (it became a dead letter)."""
        version = self._granted.pop((collection, doc_id), None)
        if version is not None:
            self.record(collection, [Outcome(doc_id, version, "failed", reason)])

    def record(self, collection: str, outcomes: Sequence[Outcome],
               done_entries: Sequence[int] = ()) -> None:
        """Make outcomes durable (dropping processed queue rows), then tell listeners."""
        self.ledger.finish(collection, outcomes, done_entries)
        for listener in self._listeners:
            listener(collection, outcomes)
