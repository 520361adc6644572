"""Runs of scheduled jobs, kept in the ledger: when each job last ran, how long it took
and how it ended (``status`` and ``/metrics`` show them)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Protocol

KEEP_PER_JOB = 200


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


class JobRunsMixin:
    """Job-run methods of :class:`~embedops.ledger.Ledger`."""

    def record_job_run(self: _HasTx, job: str, started_at: str, seconds: float,
                       outcome: str, detail: str = "") -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO job_runs (job, started_at, seconds, outcome, detail)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (job, started_at, seconds, outcome, detail[:2000]))
            conn.execute("DELETE FROM job_runs WHERE job = ? AND run_id NOT IN (SELECT run_id"
                         " FROM job_runs WHERE job = ? ORDER BY run_id DESC LIMIT ?)",
                         (job, job, KEEP_PER_JOB))

    def last_job_runs(self: _HasTx) -> dict[str, dict[str, Any]]:
        """The last run of every job: started_at, seconds, outcome, detail."""
        rows = self._conn.execute(
            "SELECT job, started_at, seconds, outcome, detail FROM job_runs WHERE run_id IN"
            " (SELECT max(run_id) FROM job_runs GROUP BY job) ORDER BY job").fetchall()
        return {r[0]: {"last_run": r[1], "seconds": r[2], "outcome": r[3], "detail": r[4]}
                for r in rows}
