"""The service's time series, kept in the ledger so the dashboard's plots survive a
restart: one row per sample (a Unix time and a JSON object of what was measured then).

The history is bounded twice: rows older than ``RETENTION_S`` (7 days) go, and so do all
but the newest ``MAX_SAMPLES`` (7 days at one sample a minute), so a short sampling
interval cannot grow the table without end."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Protocol

RETENTION_S = 7 * 24 * 3600.0
MAX_SAMPLES = 7 * 24 * 60


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


class TimeSeriesMixin:
    """Time-series methods of :class:`~embedops.ledger.Ledger`."""

    def record_sample(self: _HasTx, taken_at: float, data: dict[str, Any],
                      retention_s: float = RETENTION_S,
                      max_samples: int = MAX_SAMPLES) -> None:
        """Keep one sample (a JSON-serialisable object) taken at ``taken_at`` (Unix time)
        and drop the samples past the retention; a sample of the same instant replaces
        the earlier one."""
        text = json.dumps(data, sort_keys=True, allow_nan=False)
        with self._tx() as conn:
            conn.execute("DELETE FROM service_samples WHERE taken_at = ?", (taken_at,))
            conn.execute("INSERT INTO service_samples (taken_at, data) VALUES (?, ?)",
                         (taken_at, text))
            conn.execute("DELETE FROM service_samples WHERE taken_at < ?",
                         (taken_at - retention_s,))
            conn.execute("DELETE FROM service_samples WHERE taken_at NOT IN (SELECT taken_at"
                         " FROM service_samples ORDER BY taken_at DESC LIMIT ?)",
                         (max_samples,))

    def samples(self: _HasTx, since: float | None = None,
                limit: int = MAX_SAMPLES) -> list[tuple[float, dict[str, Any]]]:
        """(taken_at, data) of the samples taken at or after ``since`` (all kept when
        None), oldest first; the newest ``limit`` of them."""
        sql = "SELECT taken_at, data FROM service_samples"
        params: tuple[Any, ...] = ()
        if since is not None:
            sql += " WHERE taken_at >= ?"
            params = (since,)
        rows = self._conn.execute(f"{sql} ORDER BY taken_at DESC LIMIT ?",
                                  (*params, limit)).fetchall()
        return [(float(t), json.loads(d)) for t, d in reversed(rows)]
