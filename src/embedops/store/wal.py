"""Copying SQLite's write-ahead log into the database file off the write path.

In WAL mode a commit appends the changed pages to the log and fsyncs it; a checkpoint
later copies them into the database file. By default SQLite checkpoints inside the
commit that grows the log past 1,000 pages (4 MB) — and a batch of 1,000 deletes or
upserts of 384-d vectors changes more pages than that, so every such commit also copied
and fsynced the database file: measured on the development machine, a commit deleting
1,000 of 100,000 points took 32 ms with those checkpoints and 10.5 ms without.

So the writing handle raises the automatic threshold to ``BACKSTOP_PAGES`` (a bound
should this thread fall behind) and this thread checkpoints instead, on a connection of
its own, at most every ``INTERVAL_S`` while writes come in: a ``PASSIVE`` checkpoint,
which waits for no reader or writer (SQLite releases the interpreter lock meanwhile).
Durability is unchanged: each commit still fsyncs the log (``synchronous = FULL``), and
opening the database after a crash replays whatever the log holds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

BACKSTOP_PAGES = 16_384  # (64 MiB of 4 KiB pages) the committing connection's own threshold
INTERVAL_S = 0.25  # checkpoints come at most this often (each fsyncs the database file)

_log = logging.getLogger(__name__)


class WalCheckpointer:
    """A thread that checkpoints the store's write-ahead log after writes (module doc)."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="embedops-wal-checkpoint")
        self._thread.start()

    def wake(self) -> None:
        """A write committed: checkpoint soon."""
        self._wanted.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._db, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            while True:
                self._wanted.wait()
                self._wanted.clear()  # (before the check: a close's wake is never lost)
                # writes coming back to back share a checkpoint
                if self._stop.is_set() or self._stop.wait(INTERVAL_S):
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # (the next write's wake tries again)
                    _log.exception("checkpointing the write-ahead log failed")
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread (the store's own close checkpoints what is left)."""
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout=60)
