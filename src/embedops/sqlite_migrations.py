"""Numbered SQLite schema migrations, applied on open and recorded.

Each migration runs once, inside one transaction, and is recorded in
``schema_migrations`` with its number, name and the time it was applied. Never edit a
released migration: add the next number.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime

Migration = tuple[int, str, str]
_log = logging.getLogger("embedops.migrations")
SLOW_S = 1.0  # a migration that took this long is reported at INFO


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def statements(sql: str) -> list[str]:
    """``sql``'s statements one by one: split at the semicolons that end a statement, not
    at those inside a trigger's body (``CREATE TRIGGER … BEGIN …; END``), a string or a
    comment."""
    out: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending[:-1].strip():
                out.append(pending[:-1].strip())
            pending = ""
    if pending[:-1].strip():
        out.append(pending[:-1].strip())
    return out


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Apply every pending migration in order; returns the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises ``ValueError``
    when the database records a version newer than ``migrations`` knows.
    """
    done = applied_versions(conn)
    latest = migrations[-1][0]
    if done and max(done) > latest:
        raise ValueError(f"schema version {max(done)} is newer than this embedops ({latest})")
    applied: list[int] = []
    for version, name, sql in migrations:
        if version in done:
            continue
        # (one may read every row once: migration 2 of the store took 128 s at 10M points;
        # a slow one is reported when done, the others only to debug logs)
        _log.debug("applying schema migration %d (%s)", version, name)
        started = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, datetime.now(UTC).isoformat()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        took = time.monotonic() - started
        _log.log(logging.INFO if took >= SLOW_S else logging.DEBUG,
                 "schema migration %d (%s) applied in %.1f s", version, name, took)
        applied.append(version)
    return applied
