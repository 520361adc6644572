"""SQLite alone as the store fills: the store's ``points`` table and indexes, rows
written in batches of 10,000 in one transaction each, the rate in the first and the
last tenth of the batches. Tells how much of the store's insert-rate decline at scale
belongs to SQLite rather than the graph (compare ``bench/store_footprint.py``, whose
build includes both). Ids are made as ``bench/store_footprint.py`` makes them; the
write connection is set up as the store sets up its own (WAL, ``synchronous = FULL``,
checkpoints off the timed path), with ``--cache-mib`` and ``--mmap`` to try other page
cache and memory-map settings.

    .venv/bin/python bench/ledger_growth.py --n 300000
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from embedops.store import schema
from embedops.store.embedded import UPSERT_POINTS, WAL_BACKSTOP_PAGES

BATCH, DIM = 10_000, 384


def build(path: Path, args: argparse.Namespace) -> list[float]:
    """Seconds per batch of the ``--n`` rows written into a new database at ``path``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}")
    if args.cache_mib:
        conn.execute(f"PRAGMA cache_size = -{args.cache_mib * 1024}")
    if args.mmap:
        conn.execute(f"PRAGMA mmap_size = {1 << 34}").fetchall()
    schema.migrate(conn)  # (the store's own tables and indexes; rows under cid 1)
    vectors = np.random.default_rng(0).standard_normal((BATCH, DIM)).astype(np.float32)
    seconds: list[float] = []
    for batch, start in enumerate(range(0, args.n, BATCH)):
        rows = [(1, f"doc-{i // 4}#{i % 4}", vectors[i - start].tobytes(), f'{{"i": {i}}}',
                 batch + 1) for i in range(start, start + BATCH)]
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPSERT_POINTS, rows)
        conn.execute("COMMIT")
        seconds.append(time.perf_counter() - began)
        if batch % 10 == 9:  # (the store checkpoints on a thread of its own)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    conn.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--cache-mib", type=int, default=0, help="0: SQLite's default")
    parser.add_argument("--mmap", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledger-growth-") as folder:
        seconds = build(Path(folder) / "s.sqlite", args)
    tenth = max(1, len(seconds) // 10)
    first = tenth * BATCH / sum(seconds[:tenth])
    last = tenth * BATCH / sum(seconds[-tenth:])
    print(json.dumps({"n": len(seconds) * BATCH, "cache_mib": args.cache_mib,
                      "mmap": args.mmap,
                      "rows_per_s": round(len(seconds) * BATCH / sum(seconds)),
                      "first_tenth_rows_per_s": round(first),
                      "last_tenth_rows_per_s": round(last),
                      "last_over_first": round(last / first, 3),
                      "machine": f"{platform.machine()}, SQLite {sqlite3.sqlite_version}"},
                     indent=2))


if __name__ == "__main__":
    main()
