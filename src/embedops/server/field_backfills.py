"""The service's backfill thread: sets a newly declared field's default on the points
that lack it, in the background, one page at a time (``freshness.fields``), so
declaring a field over HTTP answers at once and writes and searches go on meanwhile.
Progress is kept in the ledger (``embedops status`` shows it); a backfill a restart
interrupted resumes when the service opens its store again."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from embedops.errors import EmbedOpsError
from embedops.freshness.fields import BackfillStopped, declared_backfill
from embedops.ledger import Ledger
from embedops.payload_schema import FieldSpec
from embedops.store.protocol import VectorStore

_log = logging.getLogger("embedops.backfills")


class FieldBackfills:
    """One worker thread, one backfill at a time in the order asked. ``start()``
    resumes the interrupted ones; ``stop()`` ends after the page in progress."""

    def __init__(self, store: VectorStore, ledger: Ledger, lock: threading.RLock) -> None:
        self.store, self.ledger, self.lock = store, ledger, lock
        self._queue: queue.Queue[tuple[str, FieldSpec] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="embedops-backfills",
                                        daemon=True)

    def start(self) -> None:
        for row in self.ledger.backfills(state="running"):
            spec = self._declared(row["collection"], row["field"])
            if spec is not None and spec.default is not None:
                _log.info("resuming the backfill of %s.%s", row["collection"], row["field"])
                self._queue.put((row["collection"], spec))
        self._thread.start()

    def submit(self, collection: str, spec: FieldSpec) -> dict[str, Any]:
        """Queue the backfill of ``spec``'s default; its first progress record."""
        self.ledger.begin_backfill(collection, spec.field, 0)
        self._queue.put((collection, spec))
        return {"state": "running", "points_total": None, "points_updated": 0}

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def idle(self) -> bool:
        """No backfill queued or running (for tests and shutdown)."""
        return self._queue.unfinished_tasks == 0

    def _declared(self, collection: str, field: str) -> FieldSpec | None:
        return next((s for s in self.ledger.payload_fields(collection) if s.field == field),
                    None)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None or self._stop.is_set():
                    return
                collection, spec = item
                # the declaration may have changed since it was queued: use the latest
                latest = self._declared(collection, spec.field) or spec
                if latest.default is None:
                    self.ledger.end_backfill(collection, spec.field, "done")
                    continue
                declared_backfill(self.store, self.ledger, collection, latest, self.lock,
                                  stop=self._stop)
            except BackfillStopped:
                return
            except EmbedOpsError as exc:  # recorded as failed by declared_backfill
                _log.error("backfill %s failed: %s", item, exc)
            except Exception:  # a bug in one backfill must not stop the others
                _log.exception("backfill %s crashed", item)
            finally:
                self._queue.task_done()
