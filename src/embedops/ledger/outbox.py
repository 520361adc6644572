"""The durable real-time queue (outbox) and per-document write versions.

Every accepted write gets a version from one write clock (``write_clock``), the same
clock for the real-time path (``enqueue``) and the batch path (``claim``). A document's
``doc_versions`` row holds the newest accepted version (``latest_seq``) and the newest one
whose effect is in the store (``applied_seq``): a write older than ``latest_seq`` is
superseded and skipped, so the last accepted write wins whichever path carries it.
Outbox rows are deleted once processed; the queue is what is left.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class OutboxEntry:
    """One queued write: ``op`` is ``put`` (``body`` holds the document) or ``delete``."""

    seq: int
    collection: str
    doc_id: str
    op: str
    body: dict[str, Any]
    enqueued_at: str
    enqueued_ts: float
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What happened to one document version: ``embedded``, ``failed`` or ``deleted``."""

    doc_id: str
    version: int
    status: str
    reason: str | None = None


def _bump(conn: sqlite3.Connection, n: int) -> int:
    """Reserve ``n`` versions; returns the first. Call inside a write transaction."""
    row = conn.execute("UPDATE write_clock SET seq = seq + ? WHERE id = 1 RETURNING seq",
                       (n,)).fetchone()
    return int(row[0]) - n + 1


_UPSERT_VERSION = (
    "INSERT INTO doc_versions (collection, doc_id, latest_seq, status, origin, updated_at) "
    "VALUES (?, ?, ?, 'queued', ?, ?) ON CONFLICT (collection, doc_id) DO UPDATE SET "
    "latest_seq = excluded.latest_seq, status = 'queued', reason = NULL, "
    "origin = excluded.origin, updated_at = excluded.updated_at")


def _entry(row: Sequence[Any]) -> OutboxEntry:
    """An ``outbox`` row (``SELECT *``) as an entry."""
    return OutboxEntry(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6],
                       row[7])


class OutboxMixin:
    """Queue and version methods of :class:`~embedops.ledger.Ledger`."""

    def read_mark(self: _HasTx) -> int:
        """The write clock now: a write accepted later gets a larger version. (A batch
        run's reader thread reads it on a handle another thread writes with: each
        statement runs under the handle's lock, ``ledger.serial_connection``.)"""
        return int(self._conn.execute("SELECT seq FROM write_clock").fetchone()[0])

    def enqueue(self: _HasTx, collection: str,
                writes: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[int]:
        """Durably queue ``(doc_id, op, body)`` writes (one transaction); returns their
        versions, in order. Once this returns, a crash cannot lose them."""
        from embedops.ledger.ledger import utc_now

        now, ts = utc_now(), time.time()
        with self._tx() as conn:
            first = _bump(conn, len(writes))
            versions = list(range(first, first + len(writes)))
            conn.executemany(
                "INSERT INTO outbox (seq, collection, doc_id, op, body, enqueued_at, "
                "enqueued_ts) VALUES (?,?,?,?,?,?,?)",
                [(v, collection, d, op, json.dumps(body), now, ts)
                 for v, (d, op, body) in zip(versions, writes, strict=True)])
            conn.executemany(_UPSERT_VERSION, [(collection, d, v, "api", now)
                                               for v, (d, _, _) in zip(versions, writes,
                                                                       strict=True)])
            channel = getattr(self, "outbox_channel", None)
            if channel:  # a shared ledger: wake every replica's worker (at commit)
                conn.execute("SELECT pg_notify(?, '')", (channel,))
        return versions

    def claim(self: _HasTx, collection: str, marks: Mapping[str, int],
              origin: str = "batch") -> dict[str, int]:
        """Versions for documents whose content was read at write clock ``marks[doc]``.
        A document with a write accepted after its mark is left out (that write is newer
        and wins)."""
        from embedops.ledger.ledger import utc_now

        now = utc_now()
        granted: dict[str, int] = {}
        with self._tx() as conn:
            for doc_id, mark in marks.items():
                row = conn.execute("SELECT latest_seq FROM doc_versions WHERE collection = ? "
                                   "AND doc_id = ?", (collection, doc_id)).fetchone()
                if row is not None and int(row[0]) > mark:
                    continue
                granted[doc_id] = _bump(conn, 1)
                conn.execute(_UPSERT_VERSION, (collection, doc_id, granted[doc_id],
                                               origin, now))
        return granted

    def next_entries(self: _HasTx, limit: int) -> list[OutboxEntry]:
        """The oldest ``limit`` queued writes, oldest first."""
        rows = self._conn.execute("SELECT * FROM outbox ORDER BY seq LIMIT ?",
                                  (limit,)).fetchall()
        return [_entry(r) for r in rows]

    def queued_documents(self: _HasTx, limit: int) -> list[tuple[str, str]]:
        """``(collection, doc_id)`` of the oldest ``limit`` queued writes, oldest first
        (their bodies are not read: a worker reads them after claiming the documents)."""
        return [(str(c), str(d)) for c, d in self._conn.execute(
            "SELECT collection, doc_id FROM outbox ORDER BY seq LIMIT ?", (limit,))]

    def entries_for(self: _HasTx, collection: str, doc_ids: Sequence[str]) -> list[OutboxEntry]:
        """Every queued write to ``doc_ids`` of ``collection``, oldest first."""
        out: list[OutboxEntry] = []
        for i in range(0, len(doc_ids), 500):
            part = list(doc_ids[i : i + 500])
            rows = self._conn.execute(
                f"SELECT * FROM outbox WHERE collection = ? AND doc_id IN "
                f"({','.join('?' * len(part))})", (collection, *part)).fetchall()
            out += [_entry(r) for r in rows]
        return sorted(out, key=lambda e: e.seq)

    def queue_stats(self: _HasTx) -> tuple[int, float | None]:
        """(queued writes, enqueue time of the oldest as a Unix timestamp or None)."""
        row = self._conn.execute("SELECT count(*), min(enqueued_ts) FROM outbox").fetchone()
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    def latest_versions(self: _HasTx, collection: str,
                        doc_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """doc_id -> (latest accepted version, latest applied version)."""
        out: dict[str, tuple[int, int]] = {}
        for i in range(0, len(doc_ids), 500):
            part = list(doc_ids[i : i + 500])
            rows = self._conn.execute(
                "SELECT doc_id, latest_seq, applied_seq FROM doc_versions WHERE collection = ?"
                f" AND doc_id IN ({','.join('?' * len(part))})", (collection, *part))
            out.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
        return out

    def finish(self: _HasTx, collection: str, outcomes: Sequence[Outcome],
               done_entries: Sequence[int] = ()) -> None:
        """Record outcomes and drop processed outbox rows, in one transaction. The status
        changes only for the newest accepted version; older ones just advance
        ``applied_seq``."""
        from embedops.ledger.ledger import utc_now

        now = utc_now()
        with self._tx() as conn:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in done_entries])
            conn.executemany(
                "UPDATE doc_versions SET applied_seq = max(applied_seq, ?), status = CASE WHEN"
                " latest_seq <= ? THEN ? ELSE status END, reason = CASE WHEN latest_seq <= ?"
                " THEN ? ELSE reason END, updated_at = ? WHERE collection = ? AND doc_id = ?",
                [(o.version, o.version, o.status, o.version, o.reason, now, collection,
                  o.doc_id) for o in outcomes])

    def touch_attempts(self: _HasTx, seqs: Sequence[int]) -> None:
        with self._tx() as conn:
            conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?",
                             [(s,) for s in seqs])

    def version_status(self: _HasTx, collection: str, doc_id: str) -> dict[str, Any] | None:
        """The ``doc_versions`` row of a document as a dict, or None."""
        cur = self._conn.execute("SELECT * FROM doc_versions WHERE collection = ? AND "
                                 "doc_id = ?", (collection, doc_id))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None

    def iter_versions(self: _HasTx, collection: str) -> Iterator[dict[str, Any]]:
        cur = self._conn.execute("SELECT * FROM doc_versions WHERE collection = ?",
                                 (collection,))
        names = [c[0] for c in cur.description]
        for row in cur.fetchall():
            yield dict(zip(names, row, strict=True))
