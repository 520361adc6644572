"""Work claims: which ingest run is embedding which document right now.

Several ingest processes (or Ray write workers) over overlapping sources would each embed
a document that none of them has committed yet. Before a batch is embedded, its run
*claims* the batch's documents in the ledger's ``claims`` table, one row per
(collection, document): a document another live run holds is left to that run. The
claim is released once the batch is committed (or failed).

On PostgreSQL a claim is taken without the ledger's global write lock: new rows are
inserted with ``ON CONFLICT DO NOTHING`` (in id order, so two runs never deadlock), and
rows held by other runs are read with ``SELECT … FOR UPDATE SKIP LOCKED``, so two runs
taking over the same stale claim never both get it and never wait for each other. On
SQLite (one writer at a time) the same statements run under ``BEGIN IMMEDIATE``.

A claim held by a run that died is stale and taken over at once: on PostgreSQL when the
database session that took it no longer exists (``pg_stat_activity``), on any ledger when
the process that took it, on this machine, no longer runs; otherwise when it expires
(``claim_ttl_s`` after it was taken). Expiry times come from the ledger's clock — the
PostgreSQL server's, for a shared ledger — so runs on machines whose clocks disagree
still agree on which claims expired. Claims only save work: correctness never depends
on them, since every write is idempotent (chunk ids are point ids) and a document is
committed in one ledger transaction.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from embedops.errors import StoreError
from embedops.ledger.ledger import Ledger, utc_now

_PART = 500  # ids per statement
local_clock = time.time  # the clock of a ledger file on this machine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def retry_pauses(first: float = 0.05, most: float = 1.0) -> Iterator[float]:
    """Seconds to wait before each new look at documents other runs hold: doubling from
    ``first`` up to ``most`` (short claims are gone quickly; a long one is not polled hot)."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, most)


class Claims:
    """The claims of one claimant (one ingest run) in one ledger. Thread-safe as the
    ledger handle is (its lock serialises the statements)."""

    def __init__(self, ledger: Ledger, ttl_s: float) -> None:
        self.ledger, self.ttl_s = ledger, ttl_s
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.name = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self.postgres = getattr(ledger._conn, "dialect", "sqlite") == "postgresql"
        self._session: int | None = None
        if self.postgres:
            row = ledger._conn.execute("SELECT pg_backend_pid()").fetchone()
            self._session = int(row[0]) if row else None

    def take(self, collection: str, doc_ids: Iterable[str]) -> set[str]:
        """Claim ``doc_ids``; returns those this claimant now holds (free ones, its own,
        and stale claims of dead or expired runs). Raises StoreError when the ledger
        cannot be written."""
        ids = sorted(set(doc_ids))
        held: set[str] = set()
        try:
            with self.ledger._lock:
                for lo in range(0, len(ids), _PART):
                    held |= self._take(collection, ids[lo:lo + _PART])
        except sqlite3.Error as exc:
            raise StoreError(f"ledger write failed (claims): {exc}") from exc
        return held

    @contextmanager
    def holding(self, collection: str, doc_ids: Iterable[str]) -> Iterator[set[str]]:
        """``take`` for the length of a ``with`` block: yields the documents held, and
        releases them when the block ends, however it ends."""
        held = self.take(collection, doc_ids)
        try:
            yield held
        finally:
            if held:
                self.release(collection, held)

    def release(self, collection: str, doc_ids: Iterable[str]) -> None:
        """Give up this claimant's claims on ``doc_ids`` (other claimants' stay)."""
        ids = sorted(set(doc_ids))
        try:
            with self.ledger._lock:
                for lo in range(0, len(ids), _PART):
                    part = ids[lo:lo + _PART]
                    self.ledger._conn.execute(
                        f"DELETE FROM claims WHERE collection = ? AND claimant = ? AND "
                        f"doc_id IN ({_marks(part)})", (collection, self.name, *part))
        except sqlite3.Error as exc:
            raise StoreError(f"ledger write failed (claims): {exc}") from exc

    def holders(self, collection: str) -> dict[str, str]:
        """Who holds which document of ``collection`` (doc id -> claimant)."""
        rows = self.ledger._conn.execute(
            "SELECT doc_id, claimant FROM claims WHERE collection = ?", (collection,))
        return {str(d): str(c) for d, c in rows}

    # --- one transaction ---------------------------------------------------------------------

    def _take(self, collection: str, ids: Sequence[str]) -> set[str]:
        conn = self.ledger._conn
        now = self._now()
        mine = (self.name, utc_now(), now + self.ttl_s, self._session)
        conn.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO claims (collection, doc_id, claimant, claimed_at, expiry, "
                "session_pid) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, doc_id) DO NOTHING",
                [(collection, doc_id, *mine) for doc_id in ids])
            lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
            others = conn.execute(
                "SELECT doc_id, claimant, expiry, session_pid FROM claims WHERE "
                f"collection = ? AND claimant <> ? AND doc_id IN ({_marks(ids)}){lock}",
                (collection, self.name, *ids)).fetchall()
            stale = self._stale(others, now)
            if stale:
                conn.execute(
                    "UPDATE claims SET claimant = ?, claimed_at = ?, expiry = ?, "
                    f"session_pid = ? WHERE collection = ? AND doc_id IN ({_marks(stale)})",
                    (*mine, collection, *stale))
            held = {str(d) for (d,) in conn.execute(
                f"SELECT doc_id FROM claims WHERE collection = ? AND claimant = ? AND "
                f"doc_id IN ({_marks(ids)})", (collection, self.name, *ids))}
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return held

    def _now(self) -> float:
        """Seconds since the epoch by the ledger's clock (the server's on PostgreSQL)."""
        if not self.postgres:
            return local_clock()
        row = self.ledger._conn.execute(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
        return float(row[0])

    def _stale(self, rows: Sequence[tuple[Any, ...]], now: float) -> list[str]:
        """The documents of ``rows`` whose claim expired or whose claimant is gone."""
        sessions = sorted({int(r[3]) for r in rows if r[3] is not None})
        live_sessions: set[int] = set()
        if self.postgres and sessions:
            live_sessions = {int(p) for (p,) in self.ledger._conn.execute(
                f"SELECT pid FROM pg_stat_activity WHERE pid IN ({_marks(sessions)})",
                sessions)}
        stale = []
        for doc_id, claimant, expiry, session in rows:
            host, _, rest = str(claimant).partition(":")
            pid = rest.partition(":")[0]
            gone = (self.postgres and session is not None and int(session) not in
                    live_sessions) or (host == self.host and pid.isdigit() and
                                       not _alive(int(pid)))
            if gone or float(expiry) < now:
                stale.append(str(doc_id))
        return stale


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
