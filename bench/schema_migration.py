"""The store's schema migration 2 (each collection's totals in its catalog row) on a store
written before it, and ``stats()`` after: times the first read-write open (which applies
the migration, one pass over every row), two ``stats()`` calls on that handle, then a
read-only open and its ``stats()``. Prints JSON.

The store must be at schema version 1: one built by a release before migration 2, or,
with ``--back-to-1``, any store taken back to version 1 first (the totals' columns
dropped and the migration's record removed: the migration then runs again in full). A
store at version 3 is taken back through version 2 (its vectors put back in the points'
rows), and the open then applies migration 3 too, timed with migration 2.

    .venv/bin/python bench/schema_migration.py --path /tmp/s10m
    .venv/bin/python bench/schema_migration.py --path /tmp/s1m --back-to-1
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

from embedops.store import open_store


def back_to_version_1(path: Path) -> None:
    conn = sqlite3.connect(path / "store.sqlite")
    (apart,) = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'vectors'"
                            ).fetchone()
    if apart:  # (schema migration 3 undone first: the vectors back in the points' rows)
        conn.executescript(
            "ALTER TABLE points ADD COLUMN vector BLOB NOT NULL DEFAULT x'';"
            "UPDATE points SET vector = (SELECT vector FROM vectors "
            "WHERE vectors.rowkey = points.rowkey);"
            "DROP TABLE vectors;")
    conn.executescript("ALTER TABLE collections DROP COLUMN points; "
                       "ALTER TABLE collections DROP COLUMN row_bytes; "
                       "DELETE FROM schema_migrations WHERE version > 1;")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--back-to-1", action="store_true",
                        help="take the store back to schema version 1 first")
    args = parser.parse_args()
    if args.back_to_1:
        back_to_version_1(args.path)
    started = time.perf_counter()
    store = open_store(args.path)
    out: dict[str, object] = {"open_rw_with_migration_s":
                              round(time.perf_counter() - started, 2)}
    name = store.list_collections()[0].name
    for call in (1, 2):
        started = time.perf_counter()
        stats = store.stats(name)
        out[f"stats_{call}_s"] = round(time.perf_counter() - started, 3)
    out["points"], out["disk_bytes"] = stats["points"], stats["disk_bytes"]
    store.close()
    started = time.perf_counter()
    with open_store(args.path, read_only=True) as reader:
        out["open_ro_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        reader.stats(name)
        out["stats_ro_s"] = round(time.perf_counter() - started, 3)
    out["load_at_start"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
