"""Filtered searches on a large store, the same filter asked again and again: the first
search of a filter and the rate of those after it.

Opens a store ``bench/store_footprint.py --keep DIR --data clustered`` left (read-only:
the store is not changed) and, per filter on its ``bucket`` payload field (0-99, no
payload index unless the store has one), times the first search and then ``--queries``
more with the same filter, one thread, back to back. Prints JSON per filter: the first
search's seconds, the queries per second after it, and a digest of the hits (equal
digests: equal answers, to compare checkouts). With ``--write-every S`` the store is
copied first and a thread upserts 10 points every ``S`` seconds meanwhile (each write
moves the collection to a new change sequence). Compare checkouts by running it with
``PYTHONPATH=<checkout>/src``.

    .venv/bin/python bench/filtered_search.py --path /tmp/s1m-int8 --n 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from embedops.store import open_store
from store_footprint import ClusteredBlocks, batch_points

DIM = 384
FILTERS = {"1%": {"field": "bucket", "lt": 1}, "2%": {"field": "bucket", "lt": 2},
           "10%": {"field": "bucket", "lt": 10}}  # (1% and 2%: the selective plan at 1M)


def run(store: Any, queries: Any, count: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, where in FILTERS.items():
        digest = hashlib.sha256()
        began = time.perf_counter()
        first = store.search("c", queries[0], k=10, filter=where)[0]
        took = time.perf_counter() - began
        digest.update(",".join(h.id for h in first).encode())
        began = time.perf_counter()
        for i in range(count):
            hits = store.search("c", queries[1 + i % (len(queries) - 1)], k=10,
                                filter=where)[0]
            if i < len(queries) - 1:
                digest.update(",".join(h.id for h in hits).encode())
        rate = count / (time.perf_counter() - began)
        report[name] = {"first_s": round(took, 3), "qps_after": round(rate, 1),
                        "hits_digest": digest.hexdigest()[:12]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, required=True, help="the kept store")
    parser.add_argument("--n", type=int, required=True, help="points store_footprint wrote")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--write-every", type=float, default=0.0,
                        help="seconds between a writer thread's upserts (0: no writer)")
    args = parser.parse_args()
    data = ClusteredBlocks(args.n + 10_000, DIM)
    queries = data.queries(20)
    report: dict[str, Any] = {"n": args.n, "load_at_start": round(os.getloadavg()[0], 2)}
    if not args.write_every:
        with open_store(args.path, read_only=True) as store:
            store.search("c", queries[0], k=10)  # (the graph loads)
            report.update(run(store, queries, args.queries))
        print(json.dumps(report))
        return
    with tempfile.TemporaryDirectory(dir=args.path.parent) as folder:
        shutil.copytree(args.path, Path(folder) / "s")
        os.sync()
        with open_store(Path(folder) / "s") as store:
            store.search("c", queries[0], k=10)
            stop, writes = threading.Event(), [0]

            fresh = data[args.n:args.n + 10_000]  # (the points written: row n on)

            def writer() -> None:
                lo = 0
                while not stop.wait(args.write_every) and lo + 10 <= len(fresh):
                    ids, payloads = batch_points(args.n + lo, args.n + lo + 10)
                    store.upsert("c", ids, fresh[lo:lo + 10], payloads, fingerprint="bench")
                    lo += 10
                    writes[0] += 1

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                report.update(run(store, queries, args.queries))
            finally:
                stop.set()
                thread.join()
            report["writes"] = writes[0]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
