"""Searches and writes while a collection grows from empty: the stalls when faiss's
arrays outgrow their capacity.

faiss reallocates a graph's vectors and links, copying all of them, whenever an insert
outgrows their capacity (which doubles each time). Made in place, that copy holds the
store's index lock, and every search and write waits for it. Builds a float32 store of
``--n`` clustered points (``bench/store_footprint.py``'s mixture) from empty in upserts
of ``--batch`` while a second thread searches back to back; prints JSON: the build rate,
the longest search and upsert, the searches over 50 ms, and the 99.9th percentile.
Compare checkouts by running it with ``PYTHONPATH=<checkout>/src:bench``.

    .venv/bin/python bench/growth_stalls.py --n 300000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from embedops.store import open_store
from store_footprint import BATCH, ClusteredBlocks, batch_points

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    data = ClusteredBlocks(args.n, DIM)
    queries = data.queries(200)
    report: dict[str, object] = {"n": args.n, "batch": args.batch,
                                 "load_at_start": os.getloadavg()[0]}
    searches: list[tuple[float, float]] = []
    upserts: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "s")
        store.create_collection("c", DIM, fingerprint="bench")
        done = threading.Event()

        def search() -> None:
            while not done.is_set():
                asked = time.perf_counter()
                store.search("c", queries[len(searches) % len(queries)], k=10)
                searches.append((asked - start, time.perf_counter() - asked))

        start = time.perf_counter()
        searcher = threading.Thread(target=search)
        searcher.start()
        try:
            for block_lo in range(0, args.n, BATCH):
                block = data[block_lo:block_lo + BATCH]
                for lo in range(0, len(block), args.batch):
                    ids, payloads = batch_points(block_lo + lo, block_lo + lo + args.batch)
                    asked = time.perf_counter()
                    store.upsert("c", ids, block[lo:lo + args.batch], payloads,
                                 fingerprint="bench")
                    upserts.append(time.perf_counter() - asked)
            store.wait_merged(timeout=3600)
            built = time.perf_counter() - start
        finally:
            done.set()
            searcher.join()
        report["points"] = store.count("c")
        store.close()
    took = np.array([t for _, t in searches])
    slow = [[round(at, 2), round(t, 3)] for at, t in searches if t > 0.05]
    report.update(
        build_s=round(built, 1), points_per_s=round(args.n / built),
        searches=len(took), search_max_s=round(float(took.max()), 3),
        search_p999_ms=round(1000 * float(np.quantile(took, 0.999)), 1),
        search_p50_ms=round(1000 * float(np.median(took)), 2),
        searches_over_50ms=len(slow), upsert_max_s=round(max(upserts), 3),
        upsert_p50_ms=round(1000 * float(np.median(upserts)), 1),
        slow_searches_at_s_took_s=sorted(slow, key=lambda s: -s[1])[:10])
    print(json.dumps(report))


if __name__ == "__main__":
    main()
