"""What SQLite itself costs a delete of 1,000 points, on the embedded store's table layout
and on others, with no store around it: the floor under the store's delete rate.

Each variant builds a table of ``--n`` points (384-d float32 vectors, ``{"bucket": i % 10}``
payloads, ids ``"0"``..) in a file under ``--dir`` with the store's pragmas (WAL,
synchronous FULL), then deletes ``--batches`` batches of 1,000 ids as the store does
(their row keys into ``tombstones``, then ``DELETE … WHERE rowkey IN``), one transaction
each, and times the statements and the commit. Variants:

* ``store``: the store's ``points`` table (vector BLOB in the row) with a payload index
  (``json_extract(payload, '$.bucket')``), as ``bench/ann.py`` creates it — the baseline;
* ``no_payload_index``: the same without the payload index;
* ``vectors_apart``: the vectors in a table of their own, left for a later sweep (only
  the small ``points`` rows and their indexes change in the delete);
* ``vectors_apart_deleted``: the vectors in a table of their own, deleted with the rows.

Prints JSON: per variant the median (min–max over ``--runs`` fresh tables) of the
milliseconds a batch's statements and its commit take, and deletes per second, with each
variant's rate ÷ the baseline's.

    .venv/bin/python bench/sqlite_deletes.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from run_stats import summary  # bench/ is the script's directory

DIM = 384
BATCH = 1000
POINTS = ("CREATE TABLE points (rowkey INTEGER PRIMARY KEY AUTOINCREMENT, cid INTEGER NOT "
          "NULL, id TEXT NOT NULL, vector BLOB NOT NULL, payload TEXT NOT NULL DEFAULT '{}', "
          "seq INTEGER NOT NULL, UNIQUE (cid, id))")
VARIANTS = ("store", "no_payload_index", "vectors_apart", "vectors_apart_deleted")


def _table(folder: Path, variant: str, n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / f"{variant}.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(POINTS)
    conn.execute("CREATE INDEX points_cid_seq ON points (cid, seq)")
    if variant != "no_payload_index":
        conn.execute("CREATE INDEX payload_bucket ON points "
                     "(cid, json_extract(payload, '$.bucket'))")
    conn.execute("CREATE TABLE tombstones (cid INTEGER NOT NULL, rowkey INTEGER NOT NULL, "
                 "seq INTEGER NOT NULL)")
    conn.execute("CREATE INDEX tombstones_cid_seq ON tombstones (cid, seq)")
    apart = variant.startswith("vectors_apart")
    conn.execute("CREATE TABLE vectors (rowkey INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
    blob = os.urandom(DIM * 4)
    conn.execute("BEGIN")
    for lo in range(0, n, 10_000):
        conn.executemany(
            "INSERT INTO points (cid, id, vector, payload, seq) VALUES (1, ?, ?, ?, 1)",
            [(str(i), b"" if apart else blob, json.dumps({"bucket": i % 10}))
             for i in range(lo, min(lo + 10_000, n))])
    if apart:
        conn.execute("INSERT INTO vectors SELECT rowkey, ? FROM points", (blob,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return conn


def one_run(folder: Path, variant: str, n: int, batches: int) -> dict[str, float]:
    conn = _table(folder, variant, n)
    statements, commits = [], []
    for b in range(batches):
        ids = json.dumps([str(i) for i in range(b * BATCH, (b + 1) * BATCH)])
        seq = b + 2
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO tombstones (cid, rowkey, seq) SELECT cid, rowkey, ? FROM "
                      "points WHERE cid = 1 AND id IN (SELECT value FROM json_each(?))",
                      (seq, ids))
        conn.execute("DELETE FROM points WHERE rowkey IN (SELECT rowkey FROM tombstones "
                     "WHERE cid = 1 AND seq = ?)", (seq,))
        if variant == "vectors_apart_deleted":
            conn.execute("DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM tombstones "
                         "WHERE cid = 1 AND seq = ?)", (seq,))
        done = time.perf_counter()
        conn.execute("COMMIT")
        statements.append((done - started) * 1000)
        commits.append((time.perf_counter() - done) * 1000)
    conn.close()
    total = sum(statements) + sum(commits)
    statements.sort()
    commits.sort()
    return {"statements_ms": statements[len(statements) // 2],
            "commit_ms": commits[len(commits) // 2],
            "deletes_per_s": batches * BATCH / total * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the tables go (default: /tmp)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for variant in variants:  # (alternating: a slow minute hits every variant)
            with tempfile.TemporaryDirectory(dir=args.dir) as folder:
                runs[variant].append(one_run(Path(folder), variant, args.n, args.batches))
    out: dict[str, object] = {"n": args.n, "batch": BATCH, "runs": args.runs}
    for variant in variants:
        out[variant] = {key: summary([r[key] for r in runs[variant]])
                        for key in runs[variant][0]}
        if "store" in runs and variant != "store":
            out[variant]["rate_vs_store"] = summary(  # type: ignore[index]
                [r["deletes_per_s"] / s["deletes_per_s"]
                 for r, s in zip(runs[variant], runs["store"], strict=True)], digits=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
