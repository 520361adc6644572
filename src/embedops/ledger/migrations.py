"""Model migrations in the ledger: one row per migration, its phase and progress, and
requests that a command hands to the serving process when the service owns the store.

The row is the migration's state machine (see ``embedops.migrate.state``): every phase
change and every backfilled batch is committed here, so a migration killed at any moment
resumes from its last committed batch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

# Phases in which writes to the live collection also go to the other one of the pair.
DUAL_WRITE_PHASES = ("backfilling", "paused", "ready", "swapped", "rolled_back")
ACTIVE_PHASES = ("planned", *DUAL_WRITE_PHASES)


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class MigrationRecord:
    """One migration of an alias from its live collection to a shadow collection."""

    migration_id: int
    alias: str
    phase: str
    live: str
    shadow: str
    model: str
    fingerprint: str
    dtype: str
    max_rate: float | None
    cursor: str
    docs_done: int
    chunks_done: int
    docs_total: int
    evaluation: dict[str, Any] | None
    gate_passed: bool | None
    forced: bool
    created_at: str
    updated_at: str
    backfilled_at: str | None
    swapped_at: str | None
    retain_until: str | None
    finished_at: str | None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_COLUMNS = ("migration_id, alias, phase, live, shadow, model, fingerprint, dtype, max_rate, "
            "cursor, docs_done, chunks_done, docs_total, evaluation, gate_passed, forced, "
            "created_at, updated_at, backfilled_at, swapped_at, retain_until, finished_at, "
            "history")


def _record(row: Sequence[Any]) -> MigrationRecord:
    values = list(row)
    values[13] = json.loads(values[13]) if values[13] else None
    values[14] = None if values[14] is None else bool(values[14])
    values[15] = bool(values[15])
    values[22] = json.loads(values[22] or "[]")
    return MigrationRecord(*values)


@dataclass(frozen=True)
class MigrationRequest:
    request_id: int
    alias: str
    action: str
    args: dict[str, Any]


class MigrationsMixin:
    """Migration methods of :class:`~embedops.ledger.Ledger`."""

    def create_migration(self: _HasTx, alias: str, live: str, shadow: str, model: str,
                         fingerprint: str, dtype: str, max_rate: float | None,
                         docs_total: int) -> int:
        now = _now()
        history = json.dumps([{"phase": "planned", "at": now}])
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO migrations (alias, phase, live, shadow, model, fingerprint, dtype,"
                " max_rate, docs_total, created_at, updated_at, history)"
                " VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alias, live, shadow, model, fingerprint, dtype, max_rate, docs_total, now,
                 now, history))
        return int(cur.lastrowid or 0)

    def migrations(self: _HasTx, alias: str | None = None) -> list[MigrationRecord]:
        """All migrations (of ``alias``), newest first."""
        sql = f"SELECT {_COLUMNS} FROM migrations"
        rows = (self._conn.execute(sql + " WHERE alias = ? ORDER BY migration_id DESC",
                                   (alias,)) if alias is not None
                else self._conn.execute(sql + " ORDER BY migration_id DESC"))
        return [_record(r) for r in rows.fetchall()]

    def active_migration(self: _HasTx, alias: str) -> MigrationRecord | None:
        """The migration of ``alias`` that is not finished (finalized), if any."""
        marks = ",".join("?" * len(ACTIVE_PHASES))
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM migrations WHERE alias = ? AND phase IN ({marks})"
            " ORDER BY migration_id DESC LIMIT 1", (alias, *ACTIVE_PHASES)).fetchone()
        return None if row is None else _record(row)

    def dual_write_targets(self: _HasTx, collection: str) -> list[str]:
        """The collections that writes to ``collection`` also go to: a backfilling (or
        ready) shadow, or after a swap the previous collection, kept current for the
        rollback window."""
        marks = ",".join("?" * len(DUAL_WRITE_PHASES))
        rows = self._conn.execute(
            f"SELECT live, shadow, phase FROM migrations WHERE phase IN ({marks})"
            " AND (live = ? OR shadow = ?)", (*DUAL_WRITE_PHASES, collection, collection))
        out = []
        for live, shadow, _phase in rows.fetchall():
            other = shadow if collection == live else live
            if other != collection and other not in out:
                out.append(other)
        return out

    def update_migration(self: _HasTx, migration_id: int, phase: str | None = None,
                         **fields: Any) -> None:
        """Set ``fields`` (and move to ``phase``, appended to the history) in one commit."""
        now = _now()
        with self._tx() as conn:
            if phase is not None:
                (history,) = conn.execute("SELECT history FROM migrations WHERE "
                                          "migration_id = ?", (migration_id,)).fetchone()
                events = json.loads(history or "[]")
                note = fields.pop("note", None)
                events.append({"phase": phase, "at": now, **({"note": note} if note else {})})
                fields.update(phase=phase, history=json.dumps(events))
            fields["updated_at"] = now
            for key in ("evaluation",):
                if key in fields and fields[key] is not None:
                    fields[key] = json.dumps(fields[key])
            sets = ", ".join(f"{k} = ?" for k in fields)
            conn.execute(f"UPDATE migrations SET {sets} WHERE migration_id = ?",
                         (*fields.values(), migration_id))

    def advance_backfill(self: _HasTx, migration_id: int, cursor: str, docs: int,
                         chunks: int) -> None:
        """Record one committed backfill batch: the last doc id done and the counts."""
        with self._tx() as conn:
            conn.execute("UPDATE migrations SET cursor = ?, docs_done = docs_done + ?,"
                         " chunks_done = chunks_done + ?, updated_at = ? WHERE"
                         " migration_id = ?", (cursor, docs, chunks, _now(), migration_id))

    # --- requests to the process that owns the store ---------------------------------------

    def request_migration_action(self: _HasTx, alias: str, action: str,
                                 args: dict[str, Any]) -> int:
        with self._tx() as conn:
            cur = conn.execute("INSERT INTO migration_requests (alias, action, args,"
                               " requested_at) VALUES (?, ?, ?, ?)",
                               (alias, action, json.dumps(args), _now()))
        return int(cur.lastrowid or 0)

    def pending_migration_requests(self: _HasTx) -> list[MigrationRequest]:
        rows = self._conn.execute("SELECT request_id, alias, action, args FROM"
                                  " migration_requests WHERE done_at IS NULL ORDER BY"
                                  " request_id").fetchall()
        return [MigrationRequest(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def finish_migration_request(self: _HasTx, request_id: int, result: Any = None,
                                 error: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE migration_requests SET done_at = ?, result = ?, error = ?"
                         " WHERE request_id = ?",
                         (_now(), json.dumps(result, default=str), error, request_id))

    def migration_request(self: _HasTx, request_id: int) -> tuple[bool, Any, str | None]:
        """(done, result, error) of a request."""
        row = self._conn.execute("SELECT done_at, result, error FROM migration_requests"
                                 " WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            return True, None, f"no request {request_id}"
        return row[0] is not None, json.loads(row[1]) if row[1] else None, row[2]

    def rename_collection(self: _HasTx, old: str, new: str) -> None:
        """Move every record of collection ``old`` to ``new`` (one transaction)."""
        with self._tx() as conn:
            for table in ("documents", "dead_letters", "runs", "doc_versions", "outbox",
                          "sources", "payload_fields", "field_backfills"):
                conn.execute(f"UPDATE {table} SET collection = ? WHERE collection = ?",
                             (new, old))
