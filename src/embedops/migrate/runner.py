"""The service's migration thread: every migration step of a serving process runs here,
one at a time, so steps never race each other or a backfill batch.

It takes steps from the admin endpoints (``submit``) and from commands that found the
store owned by the service (requests in the ledger), runs each backfilling migration one
committed batch at a time between them, and finalizes migrations whose rollback window
has passed. With several serving processes on one ledger (replicas), each request is
applied by the one that claims it first, and the backfill batches of a migration are
taken one at a time under a claim (``Migrations.backfill``), so no batch is embedded twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from embedops.client import Client
from embedops.errors import EmbedOpsError
from embedops.ingest.targets import EmbedderPool, lower_priority
from embedops.ledger import Ledger
from embedops.ledger.migrations import MigrationRequest
from embedops.migrate.manager import Migrations
from embedops.migrate.requests import apply_request

_log = logging.getLogger(__name__)
EXPIRY_CHECK_S = 60.0
REQUEST_CLAIMS = "@migration-requests"  # claims on queued requests (no collection's name)


class MigrationRunner:
    """Start with ``start()``; ``submit`` a step and wait on the returned future."""

    def __init__(self, client: Client, ledger: Ledger, pool: EmbedderPool,
                 write_lock: Any, poll_s: float = 0.5) -> None:
        self.client, self.ledger = client, ledger
        self.migrations = Migrations(client, pool, write_lock, ledger=ledger)
        self.poll_s = poll_s
        self._inbox: queue.Queue[tuple[str, str, dict[str, Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._expiry_checked = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="embedops-migrations",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, alias: str, action: str, args: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._inbox.put((alias, action, args, future))
        return future

    def _loop(self) -> None:
        lower_priority(self.client.settings.background_nice)
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:  # a bug must not stop migrations for the process's life
                _log.exception("migration step failed; retrying")
                busy = False
                self._stop.wait(1.0)
            if not busy:
                try:
                    item = self._inbox.get(timeout=self.poll_s)
                except queue.Empty:
                    continue
                self._run(*item)

    def step(self) -> bool:
        """Apply waiting steps, then one backfill batch per backfilling migration.
        Returns True when there is more to do right away."""
        while not self._inbox.empty():
            self._run(*self._inbox.get_nowait())
        for request in self.ledger.pending_migration_requests():
            self._answer(request)
        if time.monotonic() - self._expiry_checked > EXPIRY_CHECK_S:
            self._expiry_checked = time.monotonic()
            self.migrations.finalize_expired()
        busy = False
        for m in self.ledger.migrations():
            if m.phase == "backfilling" and not self._stop.is_set():
                record = self.migrations.backfill(m.alias, max_batches=1)
                busy = busy or record.phase == "backfilling"
        return busy

    def _answer(self, request: MigrationRequest) -> None:
        """Apply a request another process queued, once: service replicas on one ledger
        all see it, and the one that claims it first applies it."""
        with self.migrations.claims.holding(REQUEST_CLAIMS, [str(request.request_id)]) as ours:
            if not ours or self.ledger.migration_request(request.request_id)[0]:
                return  # another process is applying it, or applied it since it was read
            try:
                result = apply_request(self.client, request.alias, request.action,
                                       request.args, self.migrations)
                self.ledger.finish_migration_request(request.request_id, result)
            except EmbedOpsError as exc:
                self.ledger.finish_migration_request(request.request_id, error=exc.message)

    def _run(self, alias: str, action: str, args: dict[str, Any], future: Future[Any]) -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(apply_request(self.client, alias, action, args,
                                                self.migrations))
            except BaseException as exc:  # handed to the waiting request, which re-raises
                future.set_exception(exc)
