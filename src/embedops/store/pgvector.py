"""The pgvector adapter: a ``VectorStore`` in PostgreSQL with the ``vector`` extension.

``postgresql://user:password@host:5432/db?schema=embedops`` (``schema`` is this adapter's
own parameter, default ``embedops``; everything else is libpq's). The tables are in
``pg_schema``: a catalog of collections and aliases, and one table per collection.

``float32`` collections hold ``vector``, ``float16`` ones ``halfvec`` (index and table).
pgvector has no 8-bit vector type, so ``int8`` collections are refused
(``InvalidCollectionSpec``) rather than stored as something else. Filters compile to
parameterised SQL (``pg_filters``). Searches use the HNSW index with iterative scans in
strict order, so a filtered search keeps reading the graph until ``k`` matches are found;
``exact=True`` turns index scans off for that query. A handle holds one connection and
serialises its calls; every write is one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from embedops.errors import (
    AliasConflict,
    AliasNotFound,
    CollectionExists,
    CollectionNotFound,
    InvalidFilter,
    StoreError,
    StoreLocked,
)
from embedops.store import pg_schema, pg_search, remote
from embedops.store.batch import lookup_ids
from embedops.store.catalog import now
from embedops.store.guards import serialised, writes
from embedops.store.names import check_name
from embedops.store.pg_filters import compile_pg_filter
from embedops.store.protocol import (
    DEFAULT_K,
    CollectionInfo,
    Filter,
    Hit,
    Point,
    check_ef,
)
from embedops.store.remote import Spec

R = TypeVar("R")


def _translate(exc: psycopg.Error) -> StoreError:
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
        return StoreLocked(f"postgresql: {exc}")
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded | psycopg.errors.StatementTooComplex):
        return InvalidFilter(f"filter is too complex for the store: {exc}")
    return StoreError(f"postgresql error: {exc}")


# Serialise calls on a handle and translate psycopg errors at the boundary.
_guarded = serialised(psycopg.Error, _translate)
_writes = writes(_guarded)


class PgVectorStore:
    """A ``VectorStore`` in one PostgreSQL schema; see the module docstring."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        from pgvector.psycopg import register_vector

        self.read_only = read_only
        conninfo, self.schema = pg_schema.split_url(url)
        self.where = f"postgresql://…/{urlsplit(conninfo).path.lstrip('/')}?schema={self.schema}"
        self._lock = threading.RLock()
        self._s = sql.Identifier(self.schema)
        try:
            self._conn: psycopg.Connection[Any] | None = psycopg.connect(
                conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({self.where}): {exc}") from exc
        try:
            if read_only:
                pg_schema.check_exists(self.conn, self.schema, self.where)
                self.conn.execute("SET default_transaction_read_only = on")
            else:
                pg_schema.bootstrap(self.conn, self.schema, self.where)
            register_vector(self.conn)
        except psycopg.Error as exc:
            self.conn.close()
            raise _translate(exc) from exc
        except BaseException:
            self.conn.close()
            raise

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        return self._conn

    # --- catalog -------------------------------------------------------------------------

    def _table(self, cid: int) -> sql.Composable:
        return pg_schema.points_table(self.schema, cid)

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s)

    def _lookup(self, name: str) -> tuple[int, Spec]:
        """The collection ``name`` refers to (directly or through an alias)."""
        row = self.conn.execute(self._q(
            "SELECT cid, name, spec FROM {s}.collections WHERE name = "
            "COALESCE((SELECT collection FROM {s}.aliases WHERE alias = %s), %s)"),
            (name, name)).fetchone()
        if row is None:
            raise CollectionNotFound(f"no collection or alias named {name!r}")
        return int(row[0]), Spec.from_dict(row[2], row[1])

    def _retry_dropped(self, name: str, body: Callable[[int, Spec], R]) -> R:
        """Run ``body`` on the collection ``name`` resolves to; when that collection is
        dropped between the lookup and the query (an alias repointed, then the old
        target dropped), resolve again once."""
        for attempt in (0, 1):
            cid, spec = self._lookup(name)
            try:
                return body(cid, spec)
            except psycopg.errors.UndefinedTable:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _aliases_of(self, name: str) -> list[str]:
        return [a for (a,) in self.conn.execute(self._q(
            "SELECT alias FROM {s}.aliases WHERE collection = %s ORDER BY alias"), (name,))]

    def _info(self, cid: int, spec: Spec) -> CollectionInfo:
        (n,) = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            self._table(cid))).fetchone() or (0,)
        return spec.info(int(n), self._aliases_of(spec.name))

    # --- collections ---------------------------------------------------------------------

    @_writes
    def create_collection(self, name: str, dim: int, *, fingerprint: str,
                          metric: str = "cosine", dtype: str = "float32", model: str = "",
                          index_params: Mapping[str, Any] | None = None,
                          payload_indexes: Sequence[str] = ()) -> CollectionInfo:
        """Create a collection (catalog row, table, HNSW index, payload indexes) in one
        transaction. Refuses ``int8`` and dimensions over pgvector's HNSW limit."""
        spec = remote.new_spec(name, dim, fingerprint, metric, dtype, model, index_params,
                               payload_indexes)
        pg_schema.check_supported(spec)
        with self.conn.transaction():
            self._catalog_lock()
            self._check_free(name)
            (cid,) = self.conn.execute(self._q(
                "INSERT INTO {s}.collections (name, spec) VALUES (%s, %s) RETURNING cid"),
                (name, Jsonb(spec.to_dict()))).fetchone() or (0,)
            pg_schema.create_points_table(self.conn, self.schema, int(cid), spec)
        return spec.info(0)

    def _catalog_lock(self) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (pg_schema.CATALOG_LOCK,))

    def _check_free(self, name: str) -> None:
        if self.conn.execute(self._q("SELECT 1 FROM {s}.aliases WHERE alias = %s"),
                             (name,)).fetchone():
            raise AliasConflict(f"{name!r} is already an alias; collection names and "
                                "aliases differ")
        if self.conn.execute(self._q("SELECT 1 FROM {s}.collections WHERE name = %s"),
                             (name,)).fetchone():
            raise CollectionExists(f"collection {name!r} already exists")

    @_writes
    def create_payload_index(self, collection: str, field: str) -> None:
        """Declare a btree expression index on a payload field (idempotent)."""
        with self.conn.transaction():
            self._catalog_lock()
            cid, spec = self._lookup(collection)
            fields = tuple(dict.fromkeys((*spec.payload_indexes, field)))
            pg_schema.create_payload_index(self.conn, self.schema, cid, field)
            self.conn.execute(self._q("UPDATE {s}.collections SET spec = %s WHERE cid = %s"),
                              (Jsonb(replace(spec, payload_indexes=fields).to_dict()), cid))

    @_writes
    def drop_collection(self, name: str) -> None:
        """Drop a collection and its table; refused while an alias targets it."""
        with self.conn.transaction():
            self._catalog_lock()
            cid, spec = self._lookup(name)
            targets = self._aliases_of(spec.name)
            if targets:
                raise AliasConflict(f"collection {spec.name!r} is the target of alias(es) "
                                    f"{targets}: repoint or delete them first")
            self.conn.execute(sql.SQL("DROP TABLE {}").format(self._table(cid)))
            self.conn.execute(self._q("DELETE FROM {s}.collections WHERE cid = %s"), (cid,))

    @_guarded
    def list_collections(self) -> list[CollectionInfo]:
        rows = self.conn.execute(self._q(
            "SELECT cid, name, spec FROM {s}.collections ORDER BY name")).fetchall()
        return [self._info(int(r[0]), Spec.from_dict(r[2], r[1])) for r in rows]

    @_guarded
    def get_collection(self, name: str) -> CollectionInfo:
        return self._retry_dropped(name, self._info)

    # --- points --------------------------------------------------------------------------

    @_writes
    def upsert(self, collection: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None, *,
               fingerprint: str) -> int:
        """Insert or replace points in one transaction (COPY into a staging table, then
        one ``INSERT … ON CONFLICT DO UPDATE``)."""
        def body(cid: int, spec: Spec) -> int:
            ids_, arr, docs = remote.prepare_batch(spec, ids, vectors, payloads, fingerprint)
            if not ids_:
                return 0
            kind = pg_schema.vector_type(spec)
            stage = sql.Identifier(f"stage_{cid}")
            with self.conn.transaction():
                self.conn.execute(sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS"
                ).format(stage, self._table(cid)))
                with self.conn.cursor() as cur, cur.copy(sql.SQL(
                        "COPY {} (id, embedding, payload) FROM STDIN WITH (FORMAT BINARY)"
                ).format(stage)) as copy:
                    copy.set_types(["text", kind, "jsonb"])
                    for i, vec, doc in zip(ids_, arr, docs, strict=True):
                        copy.write_row((i, pg_search.as_vector(vec, kind), Jsonb(doc)))
                self.conn.execute(sql.SQL(
                    # rows in id order: concurrent writers of the same ids take their
                    # row locks in one order, so they wait for each other, never deadlock
                    "INSERT INTO {t} (id, embedding, payload) SELECT id, embedding, payload "
                    "FROM {st} ORDER BY id ON CONFLICT (id) DO UPDATE SET "
                    "embedding = excluded.embedding, payload = excluded.payload").format(
                    t=self._table(cid), st=stage))
            return len(ids_)

        return self._retry_dropped(collection, body)

    def _where(self, ids: Sequence[str] | None, filter: Filter | None
               ) -> tuple[sql.Composable, list[Any]]:
        parts: list[sql.Composable] = []
        params: list[Any] = []
        if ids is not None:
            ids = lookup_ids(ids)
            parts.append(sql.SQL("id = ANY(%s::text[])"))
            params.append(ids)
        if filter is not None:
            text, fparams = compile_pg_filter(filter)
            parts.append(sql.SQL(text))
            params.extend(fparams)
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), params

    @_writes
    def delete(self, collection: str, ids: Sequence[str] | None = None,
               filter: Filter | None = None) -> int:
        """Delete the points matching ``ids`` and ``filter`` (both when both are given)."""
        remote.selection_required(ids, filter)
        where, params = self._where(ids, filter)

        def body(cid: int, spec: Spec) -> int:
            cur = self.conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(
                self._table(cid), where), params)
            return int(cur.rowcount)

        return self._retry_dropped(collection, body)

    @_writes
    def update_payload(self, collection: str, patch: Mapping[str, Any],
                       ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        """Merge ``patch`` into matching payloads (RFC 7396, in the server); vectors
        untouched."""
        doc = remote.check_patch(patch)
        remote.selection_required(ids, filter)
        where, params = self._where(ids, filter)

        def body(cid: int, spec: Spec) -> int:
            cur = self.conn.execute(sql.SQL(
                "UPDATE {t} SET payload = {s}.merge_patch(payload, %s) WHERE {w}").format(
                t=self._table(cid), s=self._s, w=where), [Jsonb(doc), *params])
            return int(cur.rowcount)

        return self._retry_dropped(collection, body)

    @_guarded
    def get(self, collection: str, ids: Sequence[str], with_vectors: bool = False) -> list[Point]:
        """The existing points among ``ids``, in the order asked."""
        ids = lookup_ids(ids)

        def body(cid: int, spec: Spec) -> list[Point]:
            rows = self.conn.execute(sql.SQL(
                "SELECT id, payload, embedding FROM {} WHERE id = ANY(%s::text[])").format(
                self._table(cid)), (ids,)).fetchall()
            found = {r[0]: r for r in rows}
            return [_point(found[i], with_vectors) for i in dict.fromkeys(ids) if i in found]

        return self._retry_dropped(collection, body)

    @_guarded
    def count(self, collection: str, filter: Filter | None = None) -> int:
        where, params = self._where(None, filter)

        def body(cid: int, spec: Spec) -> int:
            (n,) = self.conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                self._table(cid), where), params).fetchone() or (0,)
            return int(n)

        return self._retry_dropped(collection, body)

    @_guarded
    def search(self, collection: str, vectors: np.ndarray, k: int = DEFAULT_K,
               filter: Filter | None = None, ef: int | None = None,
               exact: bool = False) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first: all queries in one statement (a lateral
        join over the query array), in one read transaction. As in the embedded store, a
        filter matching at most max(2,000, 2% of the points) is answered exactly (the
        server filters, then sorts those rows); broader ones walk the HNSW graph."""
        remote.check_k(k)
        check_ef(ef)
        where, params = self._where(None, filter)

        def body(cid: int, spec: Spec) -> list[list[Hit]]:
            queries = remote.prepare_queries(spec, vectors)
            with self.conn.transaction():
                return pg_search.search(self.conn, self._table(cid), spec, queries, k,
                                        (where, params) if filter is not None else None,
                                        ef, exact)

        return self._retry_dropped(collection, body)

    def scan(self, collection: str, page_size: int = 1000, filter: Filter | None = None,
             with_vectors: bool = False) -> Iterator[list[Point]]:
        """Pages of points in id order (keyset pagination: each page is one query)."""
        if page_size < 1:
            raise StoreError("page_size must be positive")
        name = self.resolve(collection)  # a repointed alias must not switch mid-scan
        last: str | None = None
        while True:
            page = self._scan_page(name, last, page_size, filter, with_vectors)
            if not page:
                return
            last = page[-1].id
            yield page

    @_guarded
    def _scan_page(self, name: str, last: str | None, size: int, filter: Filter | None,
                   with_vectors: bool) -> list[Point]:
        cid, _ = self._lookup(name)
        where, params = self._where(None, filter)
        after = sql.SQL("true") if last is None else sql.SQL("id > %s")
        rows = self.conn.execute(sql.SQL(
            "SELECT id, payload, {v} FROM {t} WHERE {a} AND {w} ORDER BY id LIMIT %s").format(
            v=sql.SQL("embedding" if with_vectors else "NULL"), t=self._table(cid), a=after,
            w=where), [*([] if last is None else [last]), *params, size]).fetchall()
        return [_point(r, with_vectors) for r in rows]

    # --- stats and aliases ---------------------------------------------------------------

    @_guarded
    def stats(self, collection: str) -> dict[str, Any]:
        """Points; ``deleted``: the server's count of dead row versions (their HNSW
        entries stay in the graph until VACUUM); index and table bytes on the server."""
        def body(cid: int, spec: Spec) -> dict[str, Any]:
            table = f"{self.schema}.points_{cid}"
            index = f"{self.schema}.points_{cid}_hnsw"
            (points,) = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                self._table(cid))).fetchone() or (0,)
            index_bytes, disk_bytes = self.conn.execute(
                "SELECT pg_relation_size(%s::regclass), pg_total_relation_size(%s::regclass)",
                (index, table)).fetchone() or (0, 0)
            return {"collection": spec.name, "points": int(points),
                    "deleted": self._dead_rows(table), "index_points": int(points),
                    "index_bytes": int(index_bytes), "disk_bytes": int(disk_bytes),
                    "dtype": spec.dtype, "metric": spec.metric, "seq": None,
                    "index_seq": None, "checkpoint_seq": None, "engine": "pgvector"}

        return self._retry_dropped(collection, body)

    def _dead_rows(self, table: str) -> int:
        """The server's count of dead row versions not yet vacuumed (the statistics
        system's, which lags the last writes and drops as pages are pruned): pgvector
        keeps no count of the deleted entries still in its graph."""
        (n,) = self.conn.execute("SELECT pg_stat_get_dead_tuples(%s::regclass)",
                                 (table,)).fetchone() or (0,)
        return int(n)

    @_writes
    def create_alias(self, alias: str, collection: str) -> None:
        with self.conn.transaction():
            self._catalog_lock()
            self._check_target(alias, collection)
            if self.conn.execute(self._q("SELECT 1 FROM {s}.collections WHERE name = %s"),
                                 (alias,)).fetchone():
                raise AliasConflict(f"{alias!r} is a collection name and cannot be an alias")
            if self.conn.execute(self._q("SELECT 1 FROM {s}.aliases WHERE alias = %s"),
                                 (alias,)).fetchone():
                raise AliasConflict(f"alias {alias!r} already exists; use repoint_alias to "
                                    "move it")
            self.conn.execute(self._q("INSERT INTO {s}.aliases VALUES (%s, %s, %s)"),
                              (alias, collection, now()))

    def _check_target(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        if self.conn.execute(self._q("SELECT 1 FROM {s}.aliases WHERE alias = %s"),
                             (collection,)).fetchone():
            raise AliasConflict(f"{collection!r} is an alias; an alias must point at a "
                                "collection")
        if not self.conn.execute(self._q("SELECT 1 FROM {s}.collections WHERE name = %s"),
                                 (collection,)).fetchone():
            raise CollectionNotFound(f"no collection named {collection!r}")

    @_writes
    def repoint_alias(self, alias: str, collection: str) -> str:
        """Move ``alias`` in one transaction (one row UPDATE); returns the previous target."""
        with self.conn.transaction():
            self._catalog_lock()
            self._check_target(alias, collection)
            row = self.conn.execute(self._q(
                "SELECT collection FROM {s}.aliases WHERE alias = %s FOR UPDATE"),
                (alias,)).fetchone()
            if row is None:
                raise AliasNotFound(f"no alias named {alias!r}")
            self.conn.execute(self._q(
                "UPDATE {s}.aliases SET collection = %s, updated_at = %s WHERE alias = %s"),
                (collection, now(), alias))
            return str(row[0])

    @_writes
    def rename_behind_alias(self, name: str, new_name: str) -> None:
        """Rename collection ``name`` to ``new_name`` and make ``name`` an alias of it, in
        one transaction; aliases of ``name`` follow it."""
        with self.conn.transaction():
            self._catalog_lock()
            cid, spec = self._lookup(name)
            if spec.name != name:
                raise AliasConflict(f"{name!r} is already an alias (of {spec.name!r})")
            check_name(new_name)
            if self.conn.execute(self._q(
                    "SELECT 1 FROM {s}.collections WHERE name = %s UNION "
                    "SELECT 1 FROM {s}.aliases WHERE alias = %s"), (new_name, new_name)
                    ).fetchone():
                raise CollectionExists(f"{new_name!r} already names a collection or alias")
            self.conn.execute(self._q(
                "UPDATE {s}.collections SET name = %s, spec = %s WHERE cid = %s"),
                (new_name, Jsonb(replace(spec, name=new_name).to_dict()), cid))
            self.conn.execute(self._q("INSERT INTO {s}.aliases VALUES (%s, %s, %s)"),
                              (name, new_name, now()))

    @_guarded
    def resolve(self, name: str) -> str:
        return self._lookup(name)[1].name

    @_guarded
    def list_aliases(self) -> dict[str, str]:
        return dict(self.conn.execute(self._q(
            "SELECT alias, collection FROM {s}.aliases ORDER BY alias")).fetchall())

    @_writes
    def delete_alias(self, alias: str) -> None:
        cur = self.conn.execute(self._q("DELETE FROM {s}.aliases WHERE alias = %s"), (alias,))
        if cur.rowcount == 0:
            raise AliasNotFound(f"no alias named {alias!r}")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _point(row: Sequence[Any], with_vectors: bool) -> Point:
    vector = None
    if with_vectors and row[2] is not None:
        vector = np.asarray(row[2].to_numpy(), dtype=np.float32)
    return Point(id=row[0], payload=row[1], vector=vector)
