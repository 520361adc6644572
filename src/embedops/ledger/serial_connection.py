"""The SQLite connection of a ledger handle that threads share: each statement runs
under the handle's lock and is read to its end there.

A statement left open on a connection (rows not yet fetched, or a read another thread
is stepping through) holds a read snapshot. Another thread's ``BEGIN IMMEDIATE`` on the
same connection then fails at once with "database is locked" whenever a third
connection has committed since: SQLite cannot move an open snapshot forward, and its
busy timeout does not apply. The service shares handles this way (HTTP reads beside
``enqueue``; a batch run's reader thread beside its writer), so every statement of a
handle is serialised with its write transactions (``Ledger._tx`` holds the same lock)
and hands back its rows already fetched.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


class FetchedCursor:
    """A finished statement's rows, with the cursor attributes the ledger reads."""

    __slots__ = ("_next", "_rows", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        self._rows = cursor.fetchall() if cursor.description else []
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self._next = 0

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class SerialConnection:
    """``conn`` with ``execute`` and ``executemany`` run under ``lock`` and fetched there
    (module docstring); anything else is the connection's own."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn, self._lock = conn, lock

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> FetchedCursor:
        with self._lock:
            return FetchedCursor(self._conn.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Any]) -> FetchedCursor:
        with self._lock:
            return FetchedCursor(self._conn.executemany(sql, rows))

    def close(self) -> None:
        """Close once no statement runs: closing a connection while another thread
        steps a statement on it crashed the process (a segmentation fault in SQLite).
        Statements after it fail with ``sqlite3.ProgrammingError``."""
        with self._lock:
            self._conn.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
