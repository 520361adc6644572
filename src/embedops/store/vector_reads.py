"""The stored vectors of a few points, read from SQLite in one result row.

An int8 graph's search returns ``oversample * k`` candidates (40 by default) whose stored
float vectors rank them again (``search``). Read as one result row per point, each row
is a step of the statement, and Python's ``sqlite3`` lets go of the interpreter lock
around every step and builds a tuple per row: ~90 µs for 40 candidates at 50k points,
a sixth of an int8 search. Here SQLite concatenates the rows' keys and vectors itself
(``group_concat`` of the keys as text, of the vector BLOBs with no separator, cast back
to a BLOB; both aggregates see the rows in the same order), and numpy reads the vectors
as one array: ~44 µs (a diagnostic timing on 50k int8 points, the same candidates).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from embedops.store import quantization

IN_LIST_MAX = 64  # keys bound one by one up to this many, else as one JSON array


def stored_vectors(conn: sqlite3.Connection, keys: list[int], dim: int, storage_dtype: str
                   ) -> tuple[dict[int, int], np.ndarray] | None:
    """``({rowkey: row in matrix}, matrix)`` of the stored vectors of those of ``keys``
    (distinct, non-negative) that have one, as float32 rows of ``dim`` values; None when
    the bytes read are not a whole number of ``storage_dtype`` vectors (a corrupt row:
    the caller reads row by row instead)."""
    if not keys:
        return {}, np.zeros((0, dim), dtype=np.float32)
    if len(keys) <= IN_LIST_MAX:
        keys_sql, args = ",".join("?" * len(keys)), keys
    else:
        keys_sql, args = "SELECT value FROM json_each(?)", ["[" + ",".join(map(str, keys)) + "]"]
    found, blob = conn.execute(
        "SELECT group_concat(rowkey), CAST(group_concat(vector, '') AS BLOB) FROM vectors "
        f"WHERE rowkey IN ({keys_sql})", args).fetchone()
    if found is None:
        return {}, np.zeros((0, dim), dtype=np.float32)
    rowkeys = [int(key) for key in found.split(",")]
    dtype = quantization.blob_dtype(storage_dtype)
    if len(blob) != len(rowkeys) * dim * dtype.itemsize:
        return None
    matrix = np.frombuffer(blob, dtype=dtype).reshape(len(rowkeys), dim)
    return {key: i for i, key in enumerate(rowkeys)}, matrix.astype(np.float32, copy=False)
