"""The pgvector adapter's schema: URL, numbered migrations, and the DDL of a collection.

In the schema named by the URL (default ``embedops``)::

    schema_migrations   version, name, applied_at (applied on open, recorded)
    collections         cid, name, spec (jsonb: everything the collection was built with)
    aliases             alias -> collection (a repoint is one UPDATE in one transaction)
    merge_patch(a, b)   RFC 7396 JSON merge patch, for payload updates in the server
    points_<cid>        id text PRIMARY KEY, embedding vector(dim) | halfvec(dim),
                        payload jsonb; HNSW index points_<cid>_hnsw; one btree
                        expression index per declared payload field
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from embedops import pg_urls
from embedops.errors import ConfigError, InvalidCollectionSpec, StoreError
from embedops.store.catalog import now, payload_index_name
from embedops.store.pg_filters import field_sql
from embedops.store.remote import Spec

# metric -> (operator class suffix, distance operator)
OPS = {"cosine": ("cosine", "<=>"), "ip": ("ip", "<#>"), "l2": ("l2", "<->")}
MAX_HNSW_DIMS = {"float32": 2000, "float16": 4000}
MIN_PGVECTOR = (0, 8)
CATALOG_LOCK = 0x656D6265646F7073  # pg_advisory_xact_lock key of catalog changes
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "catalog", """
        CREATE TABLE {s}.collections (
            cid bigserial PRIMARY KEY, name text NOT NULL UNIQUE, spec jsonb NOT NULL);
        CREATE TABLE {s}.aliases (
            alias text PRIMARY KEY,
            collection text NOT NULL REFERENCES {s}.collections (name) ON UPDATE CASCADE,
            updated_at text NOT NULL);
        CREATE FUNCTION {s}.merge_patch(target jsonb, patch jsonb) RETURNS jsonb
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
                RETURN patch;
            END IF;
            IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
                target := '{{}}'::jsonb;
            END IF;
            RETURN (SELECT coalesce(jsonb_object_agg(key, value), '{{}}'::jsonb) FROM (
                SELECT t.key, t.value FROM jsonb_each(target) t WHERE NOT patch ? t.key
                UNION ALL
                SELECT p.key, {s}.merge_patch(target -> p.key, p.value)
                FROM jsonb_each(patch) p WHERE jsonb_typeof(p.value) <> 'null') m);
        END $$;
    """),
)


def split_url(url: str) -> tuple[str, str]:
    """``(libpq URL, schema)``: the adapter's own ``schema`` parameter taken out."""
    return pg_urls.split_url(url, "embedops", "store")


def bootstrap(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """Create the extension and the schema, then apply pending migrations, under an
    advisory lock (concurrent first opens do it once). Refuses a newer schema."""
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (CATALOG_LOCK,))
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        check_pgvector(conn)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version int PRIMARY KEY, "
            "name text NOT NULL, applied_at text NOT NULL)").format(s))
        done = {v for (v,) in conn.execute(sql.SQL(
            "SELECT version FROM {}.schema_migrations").format(s))}
        if max(done, default=0) > MIGRATIONS[-1][0]:
            raise StoreError(f"{where} has a newer schema (version {max(done)}) than this "
                             "embedops; upgrade embedops")
        for version, name, ddl in MIGRATIONS:
            if version not in done:
                conn.execute(sql.SQL(ddl).format(s=s))
                conn.execute(sql.SQL("INSERT INTO {}.schema_migrations VALUES (%s, %s, %s)"
                                     ).format(s), (version, name, now()))


def check_exists(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    (found,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                            (f"{schema}.collections",)).fetchone() or (False,)
    if not found:
        raise StoreError(f"no embedops store at {where}")
    check_pgvector(conn)


def check_pgvector(conn: psycopg.Connection[Any]) -> None:
    """Refuse pgvector before 0.8 (no ``halfvec`` before 0.7, no iterative index scans,
    which filtered searches rely on, before 0.8)."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                       ).fetchone()
    version = tuple(int(p) for p in re.findall(r"\d+", row[0])[:2]) if row else (0, 0)
    if version < MIN_PGVECTOR:
        found = row[0] if row else "none"
        raise ConfigError(f"the store needs the pgvector extension {MIN_PGVECTOR[0]}."
                          f"{MIN_PGVECTOR[1]} or later in this database (found: {found})")


def check_supported(spec: Spec) -> None:
    """Refuse what pgvector cannot hold: 8-bit vectors, and dimensions past its HNSW
    limit (``InvalidCollectionSpec``)."""
    if spec.dtype not in MAX_HNSW_DIMS:
        raise InvalidCollectionSpec(
            "pgvector has no 8-bit vector type: create the collection as float16 "
            "(halfvec, half the memory of float32) or float32")
    if spec.dim > MAX_HNSW_DIMS[spec.dtype]:
        raise InvalidCollectionSpec(
            f"pgvector's HNSW index takes at most {MAX_HNSW_DIMS[spec.dtype]} dimensions "
            f"as {spec.dtype}, got {spec.dim}")


def vector_type(spec: Spec) -> str:
    return "halfvec" if spec.dtype == "float16" else "vector"


def points_table(schema: str, cid: int) -> sql.Identifier:
    return sql.Identifier(schema, f"points_{cid}")


def create_points_table(conn: psycopg.Connection[Any], schema: str, cid: int,
                        spec: Spec) -> None:
    """The table of a new collection, its HNSW index (``m`` = connectivity,
    ``ef_construction`` = expansion_add) and its payload indexes."""
    kind, table = vector_type(spec), points_table(schema, cid)
    conn.execute(sql.SQL(
        "CREATE TABLE {} (id text PRIMARY KEY, embedding {}({}) NOT NULL, "
        "payload jsonb NOT NULL DEFAULT '{{}}')").format(
        table, sql.SQL(kind), sql.Literal(spec.dim)))
    conn.execute(sql.SQL(
        "CREATE INDEX {} ON {} USING hnsw (embedding {}) WITH (m = {}, ef_construction = {})"
    ).format(sql.Identifier(f"points_{cid}_hnsw"), table,
             sql.SQL(f"{kind}_{OPS[spec.metric][0]}_ops"),
             sql.Literal(spec.param("connectivity")), sql.Literal(spec.param("expansion_add"))))
    for field in spec.payload_indexes:
        create_payload_index(conn, schema, cid, field)


def create_payload_index(conn: psycopg.Connection[Any], schema: str, cid: int,
                         field: str) -> None:
    """A btree index on ``(payload #> '{a,b}')``: the expression filters compile to."""
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
        sql.Identifier(payload_index_name(cid, field)), points_table(schema, cid),
        sql.SQL(field_sql(field))))
