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

import json
import sqlite3
from typing import Any

import numpy as np

from embedops.store import quantization

IN_LIST_MAX = 64  # keys bound one by one up to this many, else as one JSON array
CHUNK_BYTES = 32 << 20  # vectors read by one statement, at most (SQLite caps a value at 1 GB)


def keys_in(keys: list[int]) -> tuple[str, list[Any]]:
    """The SQL of a ``rowkey IN (...)`` list of ``keys`` and its arguments: one
    placeholder a key up to ``IN_LIST_MAX`` keys, else one JSON array read by
    ``json_each`` (a statement of thousands of placeholders costs more to prepare)."""
    if len(keys) <= IN_LIST_MAX:
        return ",".join("?" * len(keys)), [*keys]
    return "SELECT value FROM json_each(?)", [json.dumps(keys)]


def stored_vectors(conn: sqlite3.Connection, keys: list[int], dim: int, storage_dtype: str
                   ) -> tuple[dict[int, int], np.ndarray] | None:
    """``({rowkey: row in matrix}, matrix)`` of the stored vectors of those of ``keys``
    (non-negative; one read each, however often asked) that have one, as float32 rows
    of ``dim`` values, read ``CHUNK_BYTES`` at a time; None when a stored vector is not
    a BLOB of ``dim`` values of ``storage_dtype`` (a corrupt row: the caller reads row by
    row instead)."""
    keys = list(dict.fromkeys(keys))  # (a key in two chunks would misalign the rows)
    dtype = quantization.blob_dtype(storage_dtype)
    size = dim * dtype.itemsize
    per_chunk = max(1, CHUNK_BYTES // size)
    found: dict[int, int] = {}
    parts = []
    for lo in range(0, len(keys), per_chunk):
        part = _read(conn, keys[lo:lo + per_chunk], size)
        if part is None:
            return None
        for key in part[0]:
            found[key] = len(found)
        parts.append(np.frombuffer(part[1], dtype=dtype).reshape(len(part[0]), dim))
    if not parts:
        return {}, np.zeros((0, dim), dtype=np.float32)
    matrix = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return found, matrix.astype(np.float32, copy=False)


def _read(conn: sqlite3.Connection, keys: list[int], size: int
          ) -> tuple[list[int], bytes] | None:
    """The keys found among ``keys`` and their vectors, one after the other; None if a
    vector found is not a BLOB of ``size`` bytes (a TEXT value's ``length`` counts
    characters up to its first NUL, while ``group_concat`` joins all of its bytes)."""
    keys_sql, args = keys_in(keys)
    found, blob, wrong = conn.execute(
        "SELECT group_concat(rowkey), CAST(group_concat(vector, '') AS BLOB), "
        "SUM(typeof(vector) <> 'blob' OR length(vector) <> ?) "
        f"FROM vectors WHERE rowkey IN ({keys_sql})",
        [size, *args]).fetchone()
    if found is None:  # (no rows)
        return [], b""
    if wrong:
        return None
    return [int(key) for key in found.split(",")], blob or b""
