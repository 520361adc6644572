"""What SQLite itself costs a delete (or an upsert of existing ids) of 1,000 points, on
the embedded store's table layout and on others, with no store around it: the floor
under the store's write rates.

Each variant builds a table of ``--n`` points (384-d float32 vectors, ``{"bucket": i % 10}``
payloads, ids ``"0"``..) in a file under ``--dir`` with the store's pragmas (WAL,
synchronous FULL), then writes ``--batches`` batches of 1,000 ids, one transaction each,
and times the statements and the commit. ``--op delete`` deletes as the store does (their
row keys into ``tombstones``, then ``DELETE … WHERE rowkey IN``); ``--op upsert`` gives
existing ids new vectors and payloads as the store does (the rows' keys looked up, then
``INSERT … ON CONFLICT DO UPDATE``). ``--order together`` takes batches of ids written
together (consecutive row keys: a document's chunks); ``scattered`` takes them at random
over the table. Variants (``--op upsert`` runs the first, the third and the fifth):

* ``vector_in_row``: the ``points`` table of the store before its schema migration 3
  (the vector BLOB in the row) with a payload index (``json_extract(payload,
  '$.bucket')``), as ``bench/ann.py`` creates it — the baseline (named ``store`` before
  migration 3);
* ``no_payload_index``: the same without the payload index;
* ``vectors_apart``: the store's layout since migration 3, the vectors in a table of
  their own, a deleted point's left for a later sweep (only the small ``points`` rows
  and their indexes change in the delete); the sweep of all the batches' vectors, in one
  transaction as a checkpoint makes it, is timed apart (``sweep_ms_per_1000``);
* ``vectors_apart_deleted``: the vectors in a table of their own, deleted with the rows;
* ``vectors_apart_cached``: ``vectors_apart`` with the store's writing connection's
  settings since d75bfd7: a page cache of ``WRITER_CACHE_KIB`` and, for an upsert, the
  statement journals in memory (``temp_store = MEMORY`` around its transaction); its
  rate is also given ÷ ``vectors_apart``'s (``rate_vs_vectors_apart``).

Prints JSON: per variant the median (min–max over ``--runs`` fresh tables) of the
milliseconds a batch's statements and its commit take, and writes per second, with each
variant's rate ÷ the baseline's.

    .venv/bin/python bench/sqlite_deletes.py --runs 3
    .venv/bin/python bench/sqlite_deletes.py --runs 3 --order scattered
    .venv/bin/python bench/sqlite_deletes.py --runs 3 --op upsert --order scattered
    .venv/bin/python bench/sqlite_deletes.py --runs 3 --op upsert \
        --variants vectors_apart,vectors_apart_cached
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from embedops.store.embedded import UPSERT_POINTS, UPSERT_VECTORS, WRITER_CACHE_KIB
from run_stats import summary  # bench/ is the script's directory

DIM = 384
BATCH = 1000
POINTS = ("CREATE TABLE points (rowkey INTEGER PRIMARY KEY AUTOINCREMENT, cid INTEGER NOT "
          "NULL, id TEXT NOT NULL, vector BLOB NOT NULL, payload TEXT NOT NULL DEFAULT '{}', "
          "seq INTEGER NOT NULL, UNIQUE (cid, id))")
POINTS_APART = ("CREATE TABLE points (rowkey INTEGER PRIMARY KEY AUTOINCREMENT, cid INTEGER "
                "NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}', seq INTEGER "
                "NOT NULL, UNIQUE (cid, id))")
VARIANTS = ("vector_in_row", "no_payload_index", "vectors_apart", "vectors_apart_deleted",
            "vectors_apart_cached")
UPSERT_VARIANTS = ("vector_in_row", "vectors_apart", "vectors_apart_cached")
APART = "vectors_apart"
BASELINE = "vector_in_row"
# The one upsert statement the store ran while the vector was in the row (the store's
# own two since then are imported: ``UPSERT_POINTS``, ``UPSERT_VECTORS``).
UPSERT_IN_ROW = ("INSERT INTO points (cid, id, vector, payload, seq) SELECT 1, "
                 "json_extract(value, '$[0]'), substr(?1, key * ?2 + 1, ?2), "
                 "json_extract(value, '$[1]'), ?3 FROM json_each(?4) WHERE true "
                 "ON CONFLICT (cid, id) DO UPDATE SET vector = excluded.vector, "
                 "payload = excluded.payload, seq = excluded.seq")
LOOKUP = ("SELECT json_group_object(id, rowkey) FROM points WHERE cid = 1 AND id IN "
          "(SELECT value FROM json_each(?))")


def _table(folder: Path, variant: str, n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / f"{variant}.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    if variant == "vectors_apart_cached":
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    apart = variant.startswith("vectors_apart")
    conn.execute(POINTS_APART if apart else POINTS)
    conn.execute("CREATE INDEX points_cid_seq ON points (cid, seq)")
    if variant != "no_payload_index":  # (every other variant has it, as the store does)
        conn.execute("CREATE INDEX payload_bucket ON points "
                     "(cid, json_extract(payload, '$.bucket'))")
    conn.execute("CREATE TABLE tombstones (cid INTEGER NOT NULL, rowkey INTEGER NOT NULL, "
                 "seq INTEGER NOT NULL)")
    conn.execute("CREATE INDEX tombstones_cid_seq ON tombstones (cid, seq)")
    conn.execute("CREATE TABLE vectors (rowkey INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
    blob = os.urandom(DIM * 4)
    conn.execute("BEGIN")
    for lo in range(0, n, 10_000):
        conn.executemany(
            "INSERT INTO points (cid, id, payload, seq) VALUES (1, ?, ?, 1)" if apart else
            "INSERT INTO points (cid, id, vector, payload, seq) VALUES (1, ?, ?, ?, 1)",
            [(str(i), json.dumps({"bucket": i % 10})) if apart else
             (str(i), blob, json.dumps({"bucket": i % 10}))
             for i in range(lo, min(lo + 10_000, n))])
    if apart:
        conn.execute("INSERT INTO vectors SELECT rowkey, ? FROM points", (blob,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return conn


def _delete(conn: sqlite3.Connection, variant: str, ids: str, seq: int) -> None:
    conn.execute("INSERT INTO tombstones (cid, rowkey, seq) SELECT cid, rowkey, ? FROM "
                  "points WHERE cid = 1 AND id IN (SELECT value FROM json_each(?))",
                  (seq, ids))
    conn.execute("DELETE FROM points WHERE rowkey IN (SELECT rowkey FROM tombstones "
                 "WHERE cid = 1 AND seq = ?)", (seq,))
    if variant == "vectors_apart_deleted":
        conn.execute("DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM tombstones "
                     "WHERE cid = 1 AND seq = ?)", (seq,))


def _upsert(conn: sqlite3.Connection, variant: str, ids: str, seq: int, blob: bytes
            ) -> None:
    names = json.loads(ids)
    pairs = json.dumps([[i, json.dumps({"bucket": seq % 10})] for i in names])
    (found,) = conn.execute(LOOKUP, (ids,)).fetchone()  # (the store looks them up first)
    if variant.startswith("vectors_apart"):
        keys = json.loads(found)
        conn.execute(UPSERT_POINTS, (1, seq, pairs))
        conn.execute(UPSERT_VECTORS, (blob * BATCH, len(blob),
                                      json.dumps([keys[i] for i in names])))
    else:
        conn.execute(UPSERT_IN_ROW, (blob * BATCH, len(blob), seq, pairs))


def one_run(folder: Path, variant: str, n: int, batches: int, op: str, order: str,
            seed: int) -> dict[str, float]:
    conn = _table(folder, variant, n)
    picked = (np.arange(n) if order == "together"
              else np.random.default_rng(seed).permutation(n))
    blob = os.urandom(DIM * 4)
    statements, commits = [], []
    for b in range(batches):
        ids = json.dumps([str(i) for i in picked[b * BATCH:(b + 1) * BATCH].tolist()])
        seq = b + 2
        started = time.perf_counter()
        journal_in_memory = op == "upsert" and variant == "vectors_apart_cached"
        if journal_in_memory:  # (as the store's upsert: ``catalog.temp_store``)
            conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("BEGIN IMMEDIATE")
        if op == "delete":
            _delete(conn, variant, ids, seq)
        else:
            _upsert(conn, variant, ids, seq, blob)
        done = time.perf_counter()
        conn.execute("COMMIT")
        if journal_in_memory:
            conn.execute("PRAGMA temp_store = DEFAULT")
        statements.append((done - started) * 1000)
        commits.append((time.perf_counter() - done) * 1000)
    out = {}
    if op == "delete" and variant in (APART, "vectors_apart_cached"):  # (the checkpoint's sweep)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM tombstones "
                     "WHERE cid = 1)")
        conn.execute("COMMIT")
        out["sweep_ms_per_1000"] = (time.perf_counter() - started) * 1000 / batches
    conn.close()
    total = sum(statements) + sum(commits)
    statements.sort()
    commits.sort()
    return {"statements_ms": statements[len(statements) // 2],
            "commit_ms": commits[len(commits) // 2],
            "writes_per_s": batches * BATCH / total * 1000, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the tables go (default: /tmp)")
    parser.add_argument("--op", choices=("delete", "upsert"), default="delete")
    parser.add_argument("--order", choices=("together", "scattered"), default="together")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated (default: all of {', '.join(VARIANTS)} for "
                             f"deletes, {', '.join(UPSERT_VARIANTS)} for upserts)")
    args = parser.parse_args()
    allowed = VARIANTS if args.op == "delete" else UPSERT_VARIANTS
    variants = args.variants.split(",") if args.variants else list(allowed)
    if unknown := [v for v in variants if v not in allowed]:
        parser.error(f"--op {args.op} runs the variants {', '.join(allowed)}, not "
                     f"{', '.join(unknown)}")
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for run in range(args.runs):
        for variant in variants:  # (alternating: a slow minute hits every variant)
            with tempfile.TemporaryDirectory(dir=args.dir) as folder:
                runs[variant].append(one_run(Path(folder), variant, args.n, args.batches,
                                             args.op, args.order, seed=run))
    out: dict[str, object] = {"n": args.n, "batch": BATCH, "runs": args.runs,
                              "op": args.op, "order": args.order}
    for variant in variants:
        out[variant] = {key: summary([r[key] for r in runs[variant]])
                        for key in runs[variant][0]}
        if BASELINE in runs and variant != BASELINE:
            out[variant]["rate_vs_vector_in_row"] = summary(  # type: ignore[index]
                [r["writes_per_s"] / s["writes_per_s"]
                 for r, s in zip(runs[variant], runs[BASELINE], strict=True)], digits=2)
        if APART in runs and variant == "vectors_apart_cached":
            out[variant]["rate_vs_vectors_apart"] = summary(  # type: ignore[index]
                [r["writes_per_s"] / s["writes_per_s"]
                 for r, s in zip(runs[variant], runs[APART], strict=True)], digits=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
