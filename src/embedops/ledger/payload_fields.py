"""Declared payload fields per collection, kept in the ledger (see ``payload_schema``)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from embedops.payload_schema import FieldSpec


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


class PayloadFieldsMixin:
    """Payload-schema methods of :class:`~embedops.ledger.Ledger`."""

    def declare_field(self: _HasTx, collection: str, spec: FieldSpec) -> None:
        """Declare (or redeclare) a payload field of ``collection``."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO payload_fields (collection, field, type, default_value, indexed,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (collection, field) DO"
                " UPDATE SET type = excluded.type, default_value = excluded.default_value,"
                " indexed = excluded.indexed",
                (collection, spec.field, spec.type, json.dumps(spec.default),
                 int(spec.indexed), datetime.now(UTC).isoformat(timespec="seconds")))

    def payload_fields(self: _HasTx, collection: str) -> list[FieldSpec]:
        rows = self._conn.execute("SELECT field, type, default_value, indexed FROM"
                                  " payload_fields WHERE collection = ? ORDER BY field",
                                  (collection,)).fetchall()
        return [FieldSpec(f, t, json.loads(d) if d else None, bool(i)) for f, t, d, i in rows]

    # --- backfills of declared defaults ----------------------------------------------

    def begin_backfill(self: _HasTx, collection: str, field: str, total: int) -> None:
        """Record that ``field``'s default is being set on ``total`` points (restarting
        an earlier backfill of the same field)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO field_backfills (collection, field, state, points_total,"
                " points_updated, started_at, finished_at, error) VALUES"
                " (?, ?, 'running', ?, 0, ?, NULL, '') ON CONFLICT (collection, field) DO"
                " UPDATE SET state = 'running', points_total = excluded.points_total,"
                " points_updated = 0, started_at = excluded.started_at,"
                " finished_at = NULL, error = ''",
                (collection, field, total, _now()))

    def note_backfill(self: _HasTx, collection: str, field: str, updated: int,
                      total: int | None = None) -> None:
        """Progress: ``updated`` points have the default so far (of ``total``)."""
        with self._tx() as conn:
            conn.execute("UPDATE field_backfills SET points_updated = ?,"
                         " points_total = max(points_total, coalesce(?, 0))"
                         " WHERE collection = ? AND field = ?",
                         (updated, total, collection, field))

    def end_backfill(self: _HasTx, collection: str, field: str, state: str,
                     error: str = "") -> None:
        """Finish a backfill: ``done`` or ``failed`` (with ``error``)."""
        with self._tx() as conn:
            conn.execute("UPDATE field_backfills SET state = ?, finished_at = ?, error = ?"
                         " WHERE collection = ? AND field = ?",
                         (state, _now(), error[:2000], collection, field))

    def backfills(self: _HasTx, collection: str | None = None,
                  state: str | None = None) -> list[dict[str, Any]]:
        """Backfills of declared fields (of ``collection``, in ``state``), oldest first."""
        sql = ("SELECT collection, field, state, points_total, points_updated, started_at,"
               " finished_at, error FROM field_backfills WHERE 1 = 1")
        params: list[Any] = []
        for column, value in (("collection", collection), ("state", state)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        rows = self._conn.execute(sql + " ORDER BY started_at, collection, field",
                                  params).fetchall()
        keys = ("collection", "field", "state", "points_total", "points_updated",
                "started_at", "finished_at", "error")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
