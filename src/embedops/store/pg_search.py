"""How the pgvector adapter answers a search: one statement for all queries.

The queries travel as one array; a lateral join runs the ``ORDER BY embedding <op> q
LIMIT k`` of each against the HNSW index, in one read transaction whose settings are
``hnsw.ef_search`` (expansion_search, or ``ef``; pgvector caps it at 1,000) and
``hnsw.iterative_scan = strict_order``: a filtered search keeps walking the graph, in
distance order, until ``k`` rows match. As in the embedded store, a filter that matches
at most max(2,000, 2% of the points) is answered exactly instead (index scans off: the
server filters, using a payload index where one is declared, and sorts those rows), and
so is ``exact=True``. Scores: cosine ``1 - d``, ip ``-(<#>)``, l2 ``-d²``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from embedops.store import pg_schema
from embedops.store.protocol import Hit
from embedops.store.remote import Spec

MAX_EF_SEARCH = 1000


def search(conn: psycopg.Connection[Any], table: sql.Identifier, spec: Spec,
           queries: np.ndarray, k: int, where: tuple[sql.Composable, list[Any]] | None,
           ef: int | None, exact: bool) -> list[list[Hit]]:
    """Top-``k`` hits per query row, best first; call inside a transaction."""
    condition, params = where if where is not None else (sql.SQL("true"), [])
    if exact or (where is not None and _narrow(conn, table, condition, params)):
        conn.execute("SET LOCAL enable_indexscan = off")
    else:
        width = min(max(ef or spec.param("expansion_search"), k), MAX_EF_SEARCH)
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(width)))
        conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
    kind = pg_schema.vector_type(spec)
    op = sql.SQL(pg_schema.OPS[spec.metric][1])
    rows = conn.execute(sql.SQL(
        "SELECT q.n, p.id, p.payload, p.d FROM unnest(%s::{kind}[]) WITH ORDINALITY AS "
        "q(v, n) CROSS JOIN LATERAL (SELECT id, payload, embedding {op} q.v AS d FROM {t} "
        "WHERE {w} ORDER BY embedding {op} q.v LIMIT %s) p ORDER BY q.n, p.d").format(
        kind=sql.SQL(kind), op=op, t=table, w=condition),
        [[as_vector(q, kind) for q in queries], *params, k]).fetchall()
    out: list[list[Hit]] = [[] for _ in range(len(queries))]
    for n, pid, payload, d in rows:
        out[n - 1].append(Hit(pid, score(spec.metric, float(d)), payload))
    return out


def _narrow(conn: psycopg.Connection[Any], table: sql.Identifier,
            condition: sql.Composable, params: list[Any]) -> bool:
    """Whether a filter matches at most max(2,000, 2% of the points); the count stops
    at that bound, so a broad filter costs little."""
    (estimate,) = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                               (table.as_string(conn),)).fetchone() or (0,)
    bound = max(2000, int(0.02 * max(float(estimate), 0.0)))
    (n,) = conn.execute(sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT %s) s").format(
        table, condition), [*params, bound + 1]).fetchone() or (0,)
    return int(n) <= bound


def as_vector(row: np.ndarray, kind: str) -> Any:
    """A row as psycopg sends it: numpy for ``vector``, ``HalfVector`` for ``halfvec``."""
    if kind == "halfvec":
        from pgvector import HalfVector

        return HalfVector(row)
    return row


def score(metric: str, distance: float) -> float:
    """Similarity from pgvector's distance: cosine 1 - d, ip -(<#>), l2 -d²."""
    if metric == "cosine":
        return 1.0 - distance
    if metric == "ip":
        return -distance
    return -(distance * distance)
