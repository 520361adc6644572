"""How long a commit waits while an index checkpoint writes its graph beside it.

One thread commits to a real SQLite database (write-ahead log, ``synchronous = FULL``, as
the store opens it) in a loop: a batch of ``--rows`` rows per transaction, 5 ms apart.
Meanwhile the main thread checkpoints an HNSW graph of ``--n`` random ``--dim``-d vectors,
replacing the file of the checkpoint before, two ways side by side, ``--runs`` times each,
alternating:

* ``one_flush`` (the baseline, the store's way until 2026-12-03): ``faiss.write_index`` to
  a temporary file, one fsync, rename, then unlink the file it replaces;
* ``slices`` (``embedops.store.durable_files``): the graph flushed every
  ``FLUSH_BYTES`` as it is written, and the replaced file cut from its end a slice at a
  time.

Prints JSON: per way, the longest commit during the checkpoint, its p99, the commits
made, and the checkpoint's own time, each as median / min / max over the runs.

    .venv/bin/python bench/checkpoint_stalls.py --n 100000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedops.store import durable_files
from embedops.store.hnsw_graph import HnswGraph
from run_stats import summary  # bench/ is the script's directory


def one_flush(graph: HnswGraph, path: Path, old: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    faiss.write_index(graph.graph, str(tmp))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    old.unlink()


def slices(graph: HnswGraph, path: Path, old: Path) -> None:
    with durable_files.replacing(path) as out:
        graph.write_graph(out.write)
    durable_files.remove_gradually(old)


def committing(db: Path, rows: int, stop: threading.Event, took: list[float]) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
    blob, key = b"x" * 64, 0
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?, ?)",
                         ((key + i, blob) for i in range(rows)))
        conn.execute("COMMIT")
        took.append(time.perf_counter() - started)
        key += rows
        time.sleep(0.005)
    conn.close()


def one_run(way: str, graph: HnswGraph, folder: Path, rows: int, n: int) -> dict[str, float]:
    old, new = folder / f"{way}-{n}-old.faiss", folder / f"{way}-{n}.faiss"
    with durable_files.replacing(old) as out:  # the checkpoint being replaced
        graph.write_graph(out.write)
    time.sleep(1.0)
    stop, took = threading.Event(), []
    thread = threading.Thread(target=committing, args=(folder / f"{way}-{n}.db", rows, stop,
                                                       took))
    thread.start()
    time.sleep(0.5)
    before = len(took)
    started = time.perf_counter()
    (one_flush if way == "one_flush" else slices)(graph, new, old)
    spent = time.perf_counter() - started
    time.sleep(0.3)  # (commits that waited for the end of the checkpoint)
    stop.set()
    thread.join()
    during = sorted(took[before:])
    new.unlink()
    return {"max_commit_ms": during[-1] * 1e3,
            "p99_commit_ms": during[int(0.99 * (len(during) - 1))] * 1e3,
            "commits": float(len(during)), "checkpoint_s": spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rows", type=int, default=1000, help="rows per commit")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph = HnswGraph(args.dim, "cosine", "float32", 16, 40)
    graph.add(np.arange(args.n, dtype=np.int64), vectors)
    results: dict[str, list[dict[str, float]]] = {"one_flush": [], "slices": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        for run in range(args.runs):
            for way in results:
                results[way].append(one_run(way, graph, Path(tmp), args.rows, run))
    report: dict[str, Any] = {"n": args.n, "dim": args.dim, "rows_per_commit": args.rows,
                              "runs": args.runs, "flush_bytes": durable_files.FLUSH_BYTES}
    for way, runs in results.items():
        report[way] = {key: summary([r[key] for r in runs], 3) for key in runs[0]}
    report["max_commit_ratio_median"] = round(
        report["one_flush"]["max_commit_ms"]["median"]
        / max(report["slices"]["max_commit_ms"]["median"], 1e-9), 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
