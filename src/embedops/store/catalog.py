"""The catalog of collections and aliases in SQLite, transactions, and sqlite3 error mapping.

Alias resolution happens inside the same SQL statement that reads the collection row, so a
reader sees either the old or the new target of a repointed alias, never a gap.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from embedops.errors import (
    AliasConflict,
    AliasNotFound,
    CollectionExists,
    CollectionNotFound,
    InvalidFilter,
    StoreCorrupted,
    StoreError,
    StoreLocked,
)
from embedops.store import quantization
from embedops.store.filters import field_sql, json_path
from embedops.store.names import check_name as check_name  # the store's one name rule
from embedops.store.protocol import CollectionInfo

_log = logging.getLogger("embedops.store")

_COLUMNS = ("cid, name, dim, metric, dtype, fingerprint, model, index_params, "
            "payload_indexes, created_at, seq, pruned_seq, quant_scale")


@dataclass(frozen=True)
class CollectionRow:
    """One row of the ``collections`` table."""

    cid: int
    name: str
    dim: int
    metric: str
    dtype: str
    fingerprint: str
    model: str
    index_params: dict[str, Any]
    payload_indexes: tuple[str, ...]
    created_at: str
    seq: int
    pruned_seq: int
    clip: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CollectionRow:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], _params(row[7]),
                   _fields(row[8]), row[9], row[10], row[11], row[12])

    def info(self, points: int, aliases: Sequence[str] = ()) -> CollectionInfo:
        return CollectionInfo(
            name=self.name, dim=self.dim, metric=self.metric, dtype=self.dtype,
            fingerprint=self.fingerprint, model=self.model, index_params=dict(self.index_params),
            payload_indexes=self.payload_indexes, created_at=self.created_at, points=points,
            seq=self.seq, aliases=tuple(aliases),
        )


@functools.lru_cache(maxsize=256)
def _fields(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


@functools.lru_cache(maxsize=256)
def _frozen_params(text: str) -> tuple[tuple[str, Any], ...]:
    return tuple(json.loads(text).items())


def _params(text: str) -> dict[str, Any]:
    """Parsed index params (parsing is cached: the catalog row is read on every call)."""
    return dict(_frozen_params(text))


# What each index parameter may be: the HNSW graph's degree and beam widths, when search
# turns exact, how often the index is checkpointed, the int8 rescoring factor, the
# points a graph segment holds at most (``segmented_index``; 0, or unset in a collection
# made before segments were the default: one graph). Outside these ranges the index
# library refuses (connectivity < 2) or memory explodes.
INDEX_PARAM_RANGES: dict[str, tuple[int, int]] = {
    "connectivity": (2, 256),
    "expansion_add": (1, 4096),
    "expansion_search": (1, 4096),
    "exact_threshold": (0, 1_000_000_000),
    "checkpoint_every": (1, 1_000_000_000),
    "oversample": (1, 100),
    "segment_size": (100, 1_000_000_000),
}
# Values outside the ranges that mean something of their own.
INDEX_PARAM_SPECIAL: dict[str, dict[int, str]] = {"segment_size": {0: "one graph"}}
# A new collection's ``segment_size`` unless it sets one: at 1M points, five segments of
# 200k keep the insert rate of a build's last tenth at 0.67-0.71 of its first, where
# one graph falls to 0.38-0.48 (docs/benchmarks-store.md, "Bounded segments by default").
DEFAULT_SEGMENT_SIZE = 200_000


def index_param_ranges() -> str:
    """Each index parameter's range (and special values), for descriptions."""
    return ", ".join(f"`{key}` {low}..{high}{_special_values(key)}"
                     for key, (low, high) in INDEX_PARAM_RANGES.items())


def _special_values(key: str) -> str:
    """`` or 0 (one graph)`` for each of ``key``'s special values (none: empty)."""
    return "".join(f" or {value} ({meaning})"
                   for value, meaning in INDEX_PARAM_SPECIAL.get(key, {}).items())


class InvalidIndexParams(StoreError):
    """``index_params`` names an unknown parameter or a value out of its range."""

    status_code = 422
    code = "invalid_index_params"


def check_index_params(params: Mapping[str, Any] | None) -> dict[str, int]:
    """A plain copy of ``params`` when every key is a known index parameter and every
    value an integer in its range (:data:`INDEX_PARAM_RANGES`); raises
    :class:`InvalidIndexParams` otherwise."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidIndexParams(f"index_params is an object, got {type(params).__name__}")
    unknown = sorted(str(key) for key in params if key not in INDEX_PARAM_RANGES)
    if unknown:
        raise InvalidIndexParams(f"unknown index_params {unknown}; known: "
                                 f"{sorted(INDEX_PARAM_RANGES)}")
    for key, value in params.items():
        low, high = INDEX_PARAM_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not (
                low <= value <= high or value in INDEX_PARAM_SPECIAL.get(key, {})):
            raise InvalidIndexParams(f"index_params.{key} must be an integer in "
                                     f"{low}..{high}{_special_values(key)}, got {value!r}")
    return dict(params)


def now() -> str:
    return datetime.now(UTC).isoformat()


@contextmanager
def sql_errors() -> Iterator[None]:
    """Translate sqlite3 exceptions into the store's error tree."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise translate_sql_error(exc) from exc


_TOO_COMPLEX = ("Expression tree is too large", "parser stack overflow",
                "too many SQL variables")


def translate_sql_error(exc: sqlite3.DatabaseError) -> StoreError:
    """The store error for a sqlite3 exception (busy/locked, a statement over SQLite's
    size limits, damaged, other)."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreLocked(f"store database is busy: {text}")
    if isinstance(exc, sqlite3.OperationalError) and any(
            limit in text for limit in _TOO_COMPLEX):
        # Only a payload filter makes statements this large; the filter limits should
        # stop it first, this keeps any that slips through a client error.
        return InvalidFilter(f"filter is too complex for the store: {text}")
    if "malformed" in text or "not a database" in text:
        return StoreCorrupted(f"store database is damaged: {text}")
    return StoreError(f"store database error: {text}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``): commits on success, rolls back otherwise."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def lookup(conn: sqlite3.Connection, name: str) -> CollectionRow:
    """The collection ``name`` refers to (directly or through an alias)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE name = "
        "COALESCE((SELECT collection FROM aliases WHERE alias = ?), ?)",
        (name, name),
    ).fetchone()
    if row is None:
        raise CollectionNotFound(f"no collection or alias named {name!r}")
    return CollectionRow.from_row(row)


def by_cid(conn: sqlite3.Connection, cid: int) -> CollectionRow | None:
    """The collection with id ``cid``, or ``None`` once it was dropped."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM collections WHERE cid = ?", (cid,)).fetchone()
    return CollectionRow.from_row(row) if row is not None else None


# A point's row and its vector (schema migration 3): the point's row first, its vector
# looked up by row key (CROSS JOIN keeps that order: the planner must not scan every
# vector to find a collection's). ``rowkey`` needs no table name beside USING.
POINTS_WITH_VECTORS = "points CROSS JOIN vectors USING (rowkey)"
POINTS_WITH_VECTORS_IN_KEY_ORDER = "points NOT INDEXED CROSS JOIN vectors USING (rowkey)"


def vector_bytes(row: CollectionRow) -> int:
    """The bytes of one stored vector of the collection (every vector has them)."""
    return row.dim * quantization.blob_dtype(row.dtype).itemsize


def row_bytes_sql(row: CollectionRow) -> str:
    """SQL for the bytes ``row_bytes`` counts for a point of the collection, over its
    ``points`` row alone (the vector's size is the collection's)."""
    return (f"{vector_bytes(row)} + LENGTH(CAST(payload AS BLOB)) "
            "+ LENGTH(CAST(id AS BLOB))")


def row_bytes(id: str, vector: bytes, payload: str) -> int:
    """The bytes a collection's totals count for one point: its vector and the UTF-8 of
    its payload and id (``row_bytes_sql``)."""
    return len(vector) + (len(payload) if payload.isascii() else len(payload.encode())) \
        + (len(id) if id.isascii() else len(id.encode()))


class Totals(NamedTuple):
    """A collection's live points, the bytes of their rows (``row_bytes``; an estimate
    after deletes by id) and the change sequence they are at."""

    points: int
    row_bytes: int
    seq: int


def totals(conn: sqlite3.Connection, cid: int) -> Totals:
    """Collection ``cid``'s ``Totals`` as every write keeps them in its catalog row: one
    row read (zeros for a collection that does not exist)."""
    found = conn.execute("SELECT points, row_bytes, seq FROM collections WHERE cid = ?",
                         (cid,)).fetchone()
    return Totals(*map(int, found)) if found is not None else Totals(0, 0, 0)


def all_collections(conn: sqlite3.Connection) -> list[CollectionRow]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM collections ORDER BY name").fetchall()
    return [CollectionRow.from_row(r) for r in rows]


def insert_collection(conn: sqlite3.Connection, name: str, dim: int, metric: str, dtype: str,
                      fingerprint: str, model: str, index_params: Mapping[str, Any],
                      payload_indexes: Sequence[str]) -> None:
    """Insert a catalog row and its payload indexes (inside the caller's transaction).
    Raises ``InvalidName`` and ``InvalidIndexParams`` for a bad name or parameters."""
    check_name(name)
    index_params = {"segment_size": DEFAULT_SEGMENT_SIZE, **check_index_params(index_params)}
    if conn.execute("SELECT 1 FROM aliases WHERE alias = ?", (name,)).fetchone():
        raise AliasConflict(f"{name!r} is already an alias; collection names and aliases differ")
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
        raise CollectionExists(f"collection {name!r} already exists")
    cur = conn.execute(
        "INSERT INTO collections (name, dim, metric, dtype, fingerprint, model, index_params, "
        "payload_indexes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, dim, metric, dtype, fingerprint, model, json.dumps(dict(index_params)),
         json.dumps(list(payload_indexes)), now()),
    )
    for field in payload_indexes:
        create_payload_index(conn, int(cur.lastrowid or 0), field)


def payload_index_name(cid: int, field: str) -> str:
    """The SQLite index name of a payload field: readable, and unique per field (a
    digest of the exact field name, so ``a.b`` and ``a__b`` never share an index)."""
    json_path(field)
    digest = hashlib.sha256(field.encode("utf-8")).hexdigest()[:10]
    return f"payload_{cid}_{field.replace('.', '__')[:40]}_{digest}"


def _legacy_index_name(cid: int, field: str) -> str:
    """The name stores made before index names carried a digest."""
    return f"payload_{cid}_{field.replace('.', '__')}"


def restore_payload_indexes(conn: sqlite3.Connection) -> None:
    """Make every declared payload index that is missing (schema migration 3 rebuilds the
    points table, which drops them; a crash before they were made again leaves them to
    the next read-write open). Cheap when none is missing."""
    for cid, fields in conn.execute("SELECT cid, payload_indexes FROM collections").fetchall():
        for field in json.loads(fields):
            try:
                create_payload_index(conn, cid, field)
            except InvalidFilter:  # (a field no filter can name: the store opens without it)
                _log.warning("collection %s declares the payload index %r, which is not a "
                             "field name: not made", cid, field)


def create_payload_index(conn: sqlite3.Connection, cid: int, field: str) -> None:
    """An expression index on ``json_extract(payload, '$.field')`` for collection ``cid``.

    The field name is validated by ``json_path``; the collection id is an int, so the DDL
    contains no user-controlled text. Queries use it through ``cid = ? AND <filter>``.
    """
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {payload_index_name(cid, field)} "
        f"ON points (cid, {field_sql(field)})"
    )


@contextmanager
def temp_store(conn: sqlite3.Connection, mode: str) -> Iterator[None]:
    """``PRAGMA temp_store = mode`` (``MEMORY``, ``FILE``) for the block, which must not
    start inside a transaction (SQLite refuses the change there once the connection
    has a temporary database); the setting before it is restored on the way out."""
    (before,) = conn.execute("PRAGMA temp_store").fetchone()
    conn.execute(f"PRAGMA temp_store = {mode}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA temp_store = {int(before)}")


def delete_collection(conn: sqlite3.Connection, row: CollectionRow) -> None:
    """Remove a collection's rows, tombstones, payload indexes and catalog entry."""
    targets = [a for (a,) in conn.execute(
        "SELECT alias FROM aliases WHERE collection = ?", (row.name,))]
    if targets:
        raise AliasConflict(
            f"collection {row.name!r} is the target of alias(es) {targets}: "
            "repoint or delete them first"
        )
    for field in row.payload_indexes:
        conn.execute(f"DROP INDEX IF EXISTS {payload_index_name(row.cid, field)}")
        conn.execute(f"DROP INDEX IF EXISTS {_legacy_index_name(row.cid, field)}")
    conn.execute("DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM points "
                 "WHERE cid = ? UNION ALL SELECT rowkey FROM tombstones WHERE cid = ?)",
                 (row.cid, row.cid))
    conn.execute("DELETE FROM points WHERE cid = ?", (row.cid,))
    conn.execute("DELETE FROM tombstones WHERE cid = ?", (row.cid,))
    conn.execute("DELETE FROM collections WHERE cid = ?", (row.cid,))


def _target_collection(conn: sqlite3.Connection, alias: str, collection: str) -> None:
    check_name(alias, "alias")
    if conn.execute("SELECT 1 FROM aliases WHERE alias = ?", (collection,)).fetchone():
        raise AliasConflict(f"{collection!r} is an alias; an alias must point at a collection")
    if not conn.execute("SELECT 1 FROM collections WHERE name = ?", (collection,)).fetchone():
        raise CollectionNotFound(f"no collection named {collection!r}")


def create_alias(conn: sqlite3.Connection, alias: str, collection: str) -> None:
    _target_collection(conn, alias, collection)
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (alias,)).fetchone():
        raise AliasConflict(f"{alias!r} is a collection name and cannot be an alias")
    if conn.execute("SELECT 1 FROM aliases WHERE alias = ?", (alias,)).fetchone():
        raise AliasConflict(f"alias {alias!r} already exists; use repoint_alias to move it")
    conn.execute("INSERT INTO aliases (alias, collection, updated_at) VALUES (?, ?, ?)",
                 (alias, collection, now()))


def repoint_alias(conn: sqlite3.Connection, alias: str, collection: str) -> str:
    _target_collection(conn, alias, collection)
    row = conn.execute("SELECT collection FROM aliases WHERE alias = ?", (alias,)).fetchone()
    if row is None:
        raise AliasNotFound(f"no alias named {alias!r}")
    conn.execute("UPDATE aliases SET collection = ?, updated_at = ? WHERE alias = ?",
                 (collection, now(), alias))
    return str(row[0])


def delete_alias(conn: sqlite3.Connection, alias: str) -> None:
    if conn.execute("DELETE FROM aliases WHERE alias = ?", (alias,)).rowcount == 0:
        raise AliasNotFound(f"no alias named {alias!r}")


def aliases(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT alias, collection FROM aliases ORDER BY alias"))
