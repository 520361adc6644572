"""Canaries in the ledger: labelled query sets, every run of each, and its baseline.

A canary keeps its queries and their relevant document ids here, so it survives without
the files it was created from. Each run records what it measured and against what: the
collection the name pointed at then, the model fingerprint, storage dtype, metric and
index parameters.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from embedops.errors import EmbedOpsError


class CanaryNotFound(EmbedOpsError):
    status_code = 404
    code = "canary_not_found"


class CanaryExists(EmbedOpsError):
    status_code = 409
    code = "canary_exists"


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CanaryQuery:
    """One labelled query: its text and the relevant document ids (graded, 1 = relevant)."""

    query_id: str
    text: str
    relevant: dict[str, int]


@dataclass(frozen=True)
class CanaryRecord:
    """A canary: the name it queries (an alias or a collection), where its queries came
    from, and the run its recall is compared with."""

    name: str
    collection: str
    source: str
    synthetic: bool
    exact: bool
    created_at: str
    baseline_run_id: int | None
    queries: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CanaryRun:
    """One run of a canary and what it ran against."""

    run_id: int
    canary: str
    ran_at: str
    collection: str
    model: str
    fingerprint: str
    query_fingerprint: str
    dtype: str
    metric: str
    index_params: dict[str, Any]
    exact: bool
    points: int
    queries: int
    recall: float
    ndcg: float
    metrics: dict[str, float]
    baseline_recall: float
    drop_points: float
    threshold_points: float
    alert: bool
    seconds: float
    is_baseline: bool = field(default=False)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["recall@10"], out["ndcg@10"] = out.pop("recall"), out.pop("ndcg")
        out["baseline_recall@10"] = out.pop("baseline_recall")
        return out


_RUN_COLUMNS = ("run_id, canary, ran_at, collection, model, fingerprint, query_fingerprint,"
                " dtype, metric, index_params, exact, points, queries, recall, ndcg, metrics,"
                " baseline_recall, drop_points, threshold_points, alert, seconds")
_RUN_FIELDS = tuple(c.strip() for c in _RUN_COLUMNS.split(","))


def _run(row: Sequence[Any], baseline_id: int | None) -> CanaryRun:
    values = dict(zip(_RUN_FIELDS, row, strict=True))
    values["index_params"] = json.loads(values["index_params"] or "{}")
    values["metrics"] = json.loads(values["metrics"] or "{}")
    values["alert"], values["exact"] = bool(values["alert"]), bool(values["exact"])
    return CanaryRun(**values, is_baseline=values["run_id"] == baseline_id)


class CanariesMixin:
    """Canary methods of :class:`~embedops.ledger.Ledger`."""

    def create_canary(self: _HasTx, name: str, collection: str, source: str,
                      queries: Sequence[CanaryQuery], synthetic: bool = False,
                      exact: bool = False, replace: bool = False) -> None:
        """Keep a canary and its queries (one transaction); ``exact``: its runs search
        exactly, past the ANN index. Raises ``CanaryExists`` unless ``replace``, which
        drops the old canary's queries and runs."""
        with self._tx() as conn:
            exists = conn.execute("SELECT 1 FROM canaries WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise CanaryExists(f"canary {name!r} exists: pick another name, or replace "
                                   "it (its runs and baseline go with it)")
            _delete(conn, name)
            conn.execute("INSERT INTO canaries (name, collection, source, synthetic, exact,"
                         " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (name, collection, source, int(synthetic), int(exact), _now()))
            conn.executemany(
                "INSERT INTO canary_queries (canary, query_id, text, relevant) VALUES"
                " (?, ?, ?, ?)",
                [(name, q.query_id, q.text, json.dumps(q.relevant, sort_keys=True))
                 for q in queries])

    def delete_canary(self: _HasTx, name: str) -> None:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM canaries WHERE name = ?", (name,)).fetchone() is None:
                raise CanaryNotFound(f"no canary {name!r}")
            _delete(conn, name)

    def canaries(self: _HasTx, name: str | None = None) -> list[CanaryRecord]:
        """Every canary (only ``name`` when given), by name."""
        sql = ("SELECT c.name, c.collection, c.source, c.synthetic, c.exact, c.created_at,"
               " c.baseline_run_id, (SELECT count(*) FROM canary_queries q WHERE q.canary ="
               " c.name) FROM canaries c")
        rows = (self._conn.execute(sql + " WHERE c.name = ?", (name,)) if name is not None
                else self._conn.execute(sql + " ORDER BY c.name")).fetchall()
        return [CanaryRecord(r[0], r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6], r[7])
                for r in rows]

    def canary(self: _HasTx, name: str) -> CanaryRecord:
        """The canary ``name``; raises ``CanaryNotFound``."""
        found = CanariesMixin.canaries(self, name)
        if not found:
            raise CanaryNotFound(f"no canary {name!r}: create it with `embedops canary "
                                 "create`")
        return found[0]

    def canary_queries(self: _HasTx, name: str) -> list[CanaryQuery]:
        rows = self._conn.execute("SELECT query_id, text, relevant FROM canary_queries WHERE"
                                  " canary = ? ORDER BY query_id", (name,)).fetchall()
        return [CanaryQuery(r[0], r[1], json.loads(r[2])) for r in rows]

    def record_canary_run(self: _HasTx, name: str, run: dict[str, Any]) -> int:
        """Keep one run (the keys of ``CanaryRun`` but ``run_id``, ``canary`` and
        ``ran_at``); the first run of a canary without a baseline becomes its baseline."""
        values = {**run, "index_params": json.dumps(run["index_params"], sort_keys=True,
                                                    default=str),
                  "metrics": json.dumps(run["metrics"], sort_keys=True),
                  "alert": int(run["alert"]), "exact": int(run["exact"])}
        columns = _RUN_FIELDS[3:]
        with self._tx() as conn:
            cur = conn.execute(
                f"INSERT INTO canary_runs (canary, ran_at, {', '.join(columns)}) VALUES"
                f" (?, ?, {', '.join('?' * len(columns))})",
                (name, run.get("ran_at") or _now(), *(values[c] for c in columns)))
            run_id = int(cur.lastrowid or 0)
            conn.execute("UPDATE canaries SET baseline_run_id = ? WHERE name = ? AND"
                         " baseline_run_id IS NULL", (run_id, name))
        return run_id

    def canary_runs(self: _HasTx, name: str, limit: int | None = None) -> list[CanaryRun]:
        """Runs of ``name``, oldest first (the latest ``limit`` when given)."""
        baseline = CanariesMixin.canary(self, name).baseline_run_id
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM canary_runs WHERE canary = ? ORDER BY run_id DESC"
            " LIMIT ?", (name, -1 if limit is None else limit)).fetchall()
        return [_run(r, baseline) for r in reversed(rows)]

    def canary_run(self: _HasTx, name: str, run_id: int) -> CanaryRun | None:
        baseline = CanariesMixin.canary(self, name).baseline_run_id
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM canary_runs WHERE canary = ?"
                                 " AND run_id = ?", (name, run_id)).fetchone()
        return None if row is None else _run(row, baseline)

    def set_canary_baseline(self: _HasTx, name: str, run_id: int | None) -> None:
        """Compare later runs with run ``run_id``; None: the next run sets the baseline."""
        with self._tx() as conn:
            conn.execute("UPDATE canaries SET baseline_run_id = ? WHERE name = ?",
                         (run_id, name))


def _delete(conn: sqlite3.Connection, name: str) -> None:
    for table, column in (("canary_runs", "canary"), ("canary_queries", "canary"),
                          ("canaries", "name")):
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))
