"""Exact (brute-force) scoring with numpy/BLAS, and a cache of small collections' vectors.

One query is scored on the calling thread alone (faiss's SIMD inner products), not by
BLAS: numpy's OpenBLAS spreads a product of one query with a few thousand rows over every
core, and its idle worker then spins for a while on the core another thread needs (a
search beside deletes, with 3,000 points pending a merge, left that worker 68% of a core,
``bench/ann.py``). A single query runs on one core throughout the store
(``hnsw_graph``); a batch of queries still spreads over all of them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import faiss
import numpy as np

from embedops.store import quantization
from embedops.store.catalog import POINTS_WITH_VECTORS, CollectionRow


def scores(queries: np.ndarray, matrix: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of every query to every row (higher is better), shape (q, n)."""
    one = len(queries) == 1 and queries.dtype == matrix.dtype == np.float32
    dots = _one_query_dots(queries, matrix) if one else queries @ matrix.T
    if metric != "l2":
        return dots
    q2 = np.einsum("ij,ij->i", queries, queries)[:, None]
    m2 = np.einsum("ij,ij->i", matrix, matrix)[None, :]
    return -(q2 - 2 * dots + m2)


def _one_query_dots(queries: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``queries @ matrix.T`` for one float32 query row, on the calling thread alone."""
    query, rows = np.ascontiguousarray(queries), np.ascontiguousarray(matrix)
    dots = np.empty((1, len(rows)), dtype=np.float32)
    if len(rows):
        faiss.fvec_inner_products_ny(faiss.swig_ptr(dots), faiss.swig_ptr(query),
                                     faiss.swig_ptr(rows), query.shape[1], len(rows))
    return dots


def top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` best entries per row, best first."""
    k = min(k, sims.shape[1])
    if k == 0:
        return np.zeros((len(sims), 0), dtype=np.int64), np.zeros((len(sims), 0), np.float32)
    if len(sims) == 1:  # one query: the same steps on one row, ~20 µs less than the
        # two-dimensional ones (``take_along_axis`` builds index arrays of its own)
        negated = -sims[0]
        part = np.argpartition(negated, k - 1)[:k]
        best = part[np.argsort(negated[part], kind="stable")]
        return best[None, :], sims[0, best][None, :]
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


@dataclass
class Dense:
    """All vectors of a collection at one change sequence, sorted by row key."""

    seq: int
    keys: np.ndarray
    matrix: np.ndarray


def load_dense(conn: sqlite3.Connection, row: CollectionRow, where: str = "",
               params: tuple[object, ...] = ()) -> Dense:
    """Read the rows of ``row``'s collection matching ``where`` (an SQL fragment) into memory."""
    sql = (f"SELECT rowkey, vector FROM {POINTS_WITH_VECTORS} WHERE cid = ? {where} "
           "ORDER BY rowkey")
    rows = conn.execute(sql, (row.cid, *params)).fetchall()
    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = quantization.decode([r[1] for r in rows], row.dim, row.dtype)
    return Dense(row.seq, keys, matrix)


class DenseCache:
    """Keeps the vectors of small collections in memory for exact search."""

    def __init__(self) -> None:
        self._cache: dict[int, Dense] = {}

    def get(self, conn: sqlite3.Connection, row: CollectionRow) -> Dense:
        dense = self._cache.get(row.cid)
        if dense is None or dense.seq != row.seq:
            dense = load_dense(conn, row)
            self._cache[row.cid] = dense
        return dense

    def drop(self, cid: int) -> None:
        self._cache.pop(cid, None)
