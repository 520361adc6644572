"""Writes beside searches in the embedded store: the rate of deletes (or of upserts of
existing ids) while one thread searches.

A store of ``--n`` random unit vectors (384-d); ``--share`` of the points (default 10%)
are deleted (``--op delete``) or given new vectors (``--op upsert``) in batches of
``--batch`` while another thread runs single-query searches back to back: the first ids,
written together (``--order together``, the default), or ids picked at random over the
collection (``--order scattered``). Two variants side by side, ``--runs`` times each:
with background compaction disabled, and with it at its defaults (a compaction starts
once tombstones reach 5% of the graph). Prints JSON:
per variant the write rate and the searches per second the other thread got, as
median / min / max over the runs. To compare two versions of the library, run the script
with each one's ``src`` on ``PYTHONPATH``, alternating.

    .venv/bin/python bench/store_writes.py --n 30000 --runs 3
    .venv/bin/python bench/store_writes.py --n 30000 --runs 3 --share 0.4 --variants compaction
    .venv/bin/python bench/store_writes.py --n 30000 --runs 3 --op upsert --variants compaction
    .venv/bin/python bench/store_writes.py --n 100000 --batch 1000 --runs 3 --op upsert \
        --order scattered --variants compaction
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store import compaction, open_store
from run_stats import summary  # bench/ is the script's directory

DIM = 384


def one_run(n: int, batch: int, compact: bool, seed: int,
            share_written: float = 0.1, op: str = "delete",
            order: str = "together") -> dict[str, float]:
    share = compaction.COMPACT_SHARE
    compaction.COMPACT_SHARE = share if compact else float("inf")
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(Path(folder) / "s")
            store.create_collection("b", DIM, fingerprint="bench",
                                    index_params={"exact_threshold": 0})
            for lo in range(0, n, 10_000):
                store.upsert("b", [str(i) for i in range(lo, min(lo + 10_000, n))],
                             data[lo:lo + 10_000], None, fingerprint="bench")
            store.checkpoint("b")
            store.wait_merged(timeout=600)  # a settled graph: no merge left from the load
            stop, searched = threading.Event(), [0]

            def searcher() -> None:
                while not stop.is_set():
                    store.search("b", data[n // 2 + searched[0] % (n // 2)], 10)
                    searched[0] += 1

            thread = threading.Thread(target=searcher)
            thread.start()
            written = int(n * share_written)
            picked = (np.arange(written) if order == "together"
                      else rng.permutation(n)[:written])
            fresh = rng.standard_normal((written, DIM)).astype(np.float32)
            fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
            started = time.perf_counter()
            for lo in range(0, written, batch):
                ids = [str(i) for i in picked[lo:lo + batch].tolist()]
                if op == "delete":
                    store.delete("b", ids=ids)
                else:
                    store.upsert("b", ids, fresh[lo:lo + len(ids)], None, fingerprint="bench")
            took = time.perf_counter() - started
            stop.set()
            thread.join()
            store.close()
    finally:
        compaction.COMPACT_SHARE = share
    return {f"{op}s_per_s": written / took, "search_qps_during": searched[0] / took}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1, help="Share of points written.")
    parser.add_argument("--op", choices=("delete", "upsert"), default="delete")
    parser.add_argument("--order", choices=("together", "scattered"), default="together",
                        help="the ids written: the first ones, written together, or ids "
                             "picked at random over the collection")
    parser.add_argument("--variants", default="no_compaction,compaction")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants.split(",")}
    for run in range(args.runs):
        for variant in results:
            results[variant].append(one_run(args.n, args.batch, variant == "compaction", run,
                                            args.share, args.op, args.order))
    out: dict[str, Any] = {"n": args.n, "dim": DIM, "batch": args.batch, "runs": args.runs,
                           "op": args.op, "order": args.order, "share_written": args.share}
    for variant, runs in results.items():
        out[variant] = {key: summary([r[key] for r in runs]) for key in runs[0]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
