"""Numbered SQLite schema migrations for the embedded store, applied on open and recorded.

Each migration runs once, inside one transaction, and is recorded in ``schema_migrations``
with its number, name and the time it was applied. Never edit a released migration: add
the next number.
"""

from __future__ import annotations

import sqlite3

from embedops.errors import StoreCorrupted, StoreError
from embedops.sqlite_migrations import Migration, apply_migrations

MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "initial",
        """
        CREATE TABLE collections (
            cid INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            dim INTEGER NOT NULL,
            metric TEXT NOT NULL,
            dtype TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            index_params TEXT NOT NULL DEFAULT '{}',
            payload_indexes TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            pruned_seq INTEGER NOT NULL DEFAULT 0,
            quant_scale REAL
        );
        CREATE TABLE aliases (
            alias TEXT PRIMARY KEY,
            collection TEXT NOT NULL REFERENCES collections(name),
            updated_at TEXT NOT NULL
        );
        CREATE TABLE points (
            rowkey INTEGER PRIMARY KEY AUTOINCREMENT,
            cid INTEGER NOT NULL,
            id TEXT NOT NULL,
            vector BLOB NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            seq INTEGER NOT NULL,
            UNIQUE (cid, id)
        );
        CREATE INDEX points_cid_seq ON points (cid, seq);
        CREATE TABLE tombstones (
            cid INTEGER NOT NULL,
            rowkey INTEGER NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX tombstones_cid_seq ON tombstones (cid, seq);
        """,
    ),
    (
        2,
        "collection totals",
        # Each collection's live points and the bytes of their rows (the vector, the
        # UTF-8 of the payload and of the id: ``catalog.ROW_BYTES``), moved by every write
        # in the statement that moves the collection's ``seq``: ``stats`` and the point
        # count read the catalog row instead of scanning the collection (summing 10M
        # rows' lengths took 53-93 s from a cold page cache). The sums are made once
        # here, for the rows written before, in one pass over the table in its own order
        # (through an index on ``cid`` each row would be a random read). (Per-row
        # triggers would keep them too, at ~6 µs a row: a third of the ledger's insert
        # rate.)
        """
        ALTER TABLE collections ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE collections ADD COLUMN row_bytes INTEGER NOT NULL DEFAULT 0;
        CREATE TEMP TABLE migration_2_counted AS
            SELECT cid, COUNT(*) AS points,
                   SUM(LENGTH(vector) + LENGTH(CAST(payload AS BLOB))
                       + LENGTH(CAST(id AS BLOB))) AS row_bytes
            FROM points NOT INDEXED GROUP BY cid;
        UPDATE collections
            SET points = (SELECT points FROM migration_2_counted AS counted
                          WHERE counted.cid = collections.cid),
                row_bytes = (SELECT row_bytes FROM migration_2_counted AS counted
                             WHERE counted.cid = collections.cid)
            WHERE cid IN (SELECT cid FROM migration_2_counted);
        DROP TABLE migration_2_counted;
        """,
    ),
    (
        3,
        "vectors apart",
        # The vectors in a table of their own, keyed by row key: a point's row keeps its
        # id, payload and change sequence (tens of bytes, not a 1.5 KB float32 vector
        # beside them). A delete then rewrites the pages of small rows, ~40 to a page
        # instead of two (docs/store.md). A deleted point's vector stays until the
        # checkpoint that prunes its tombstone sweeps it (``index_manager._prune``): row
        # keys are never reused (AUTOINCREMENT), and every read of a vector goes through
        # its point's row (``catalog.POINTS_WITH_VECTORS``).
        #
        # The points' rows are copied into a new table, in row key order, not left in
        # place by ``ALTER TABLE … DROP COLUMN``: that rewrites each row where it is, and
        # the table would keep its two rows a page until a ``VACUUM``. (Either way the
        # old pages stay in the file as free pages.) Dropping the old table drops its
        # indexes: ``points_cid_seq`` is made again here, the payload indexes by every
        # read-write open (``catalog.restore_payload_indexes``), and the AUTOINCREMENT
        # counter is carried over, so a row key deleted before the migration is never
        # given again.
        """
        CREATE TABLE vectors (
            rowkey INTEGER PRIMARY KEY,
            vector BLOB NOT NULL
        );
        INSERT INTO vectors (rowkey, vector)
            SELECT rowkey, vector FROM points NOT INDEXED ORDER BY rowkey;
        CREATE TEMP TABLE migration_3_counter AS
            SELECT seq FROM sqlite_sequence WHERE name = 'points';
        CREATE TABLE points_without_vectors (
            rowkey INTEGER PRIMARY KEY AUTOINCREMENT,
            cid INTEGER NOT NULL,
            id TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            seq INTEGER NOT NULL,
            UNIQUE (cid, id)
        );
        INSERT INTO points_without_vectors (rowkey, cid, id, payload, seq)
            SELECT rowkey, cid, id, payload, seq FROM points NOT INDEXED ORDER BY rowkey;
        DROP TABLE points;
        ALTER TABLE points_without_vectors RENAME TO points;
        CREATE INDEX points_cid_seq ON points (cid, seq);
        DELETE FROM sqlite_sequence WHERE name = 'points';
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'points', MAX(COALESCE((SELECT MAX(rowkey) FROM points), 0),
                                 COALESCE((SELECT MAX(rowkey) FROM tombstones), 0),
                                 COALESCE((SELECT seq FROM migration_3_counter), 0));
        DROP TABLE migration_3_counter;
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every pending migration in order; returns the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration runs in
    its own explicit transaction, so a crash leaves either all or none of it.

    Raises ``StoreCorrupted`` if the database records a version newer than this code knows.
    """
    try:
        return apply_migrations(conn, MIGRATIONS)
    except ValueError as exc:
        raise StoreCorrupted(f"store {exc}") from exc


def check_current(conn: sqlite3.Connection) -> None:
    """For read-only handles: raise ``StoreError`` unless every migration is applied."""
    try:
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
    except sqlite3.OperationalError as exc:
        raise StoreError(f"not an embedops store (no schema): {exc}") from exc
    have = max((r[0] for r in rows), default=0)
    if have != LATEST:
        raise StoreError(
            f"store schema is at version {have}, this embedops needs {LATEST}: "
            "open it once read-write to migrate"
        )
