"""Declared payload fields per collection, kept in the ledger (see ``payload_schema``)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

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
