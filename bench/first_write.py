"""Searches during the first write after a store is opened: the first insert into a
graph read from a checkpoint copies all of faiss's arrays.

Copies a store that ``bench/store_footprint.py --keep DIR --data clustered`` left, opens
the copy, answers one search (the graph loads), upserts ``--points`` new points and
searches for ``--seconds`` (one thread,
back to back) while the background merger inserts them. Prints JSON: the longest search
and the median, and the searches slower than 20 ms. Compare checkouts by running it with
``PYTHONPATH=<checkout>/src``.

    .venv/bin/python bench/first_write.py --path /tmp/s1m-int8 --n 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from embedops.store import open_store
from store_footprint import ClusteredBlocks, batch_points

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, required=True, help="the kept store")
    parser.add_argument("--n", type=int, required=True, help="points store_footprint wrote")
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    data = ClusteredBlocks(args.n + args.points, DIM)
    queries = data.queries(50)
    report: dict[str, object] = {"n": args.n, "points": args.points,
                                 "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(dir=args.path.parent) as folder:
        shutil.copytree(args.path, Path(folder) / "s")
        store = open_store(Path(folder) / "s")
        began = time.perf_counter()
        store.search("c", queries[0], k=10)
        report["first_search_s"] = round(time.perf_counter() - began, 3)
        ids, payloads = batch_points(args.n, args.n + args.points)
        began = time.perf_counter()
        store.upsert("c", ids, data[args.n:args.n + args.points], payloads,
                     fingerprint="bench")
        report["upsert_s"] = round(time.perf_counter() - began, 3)
        seconds: list[float] = []
        slow: list[list[float]] = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            asked = time.perf_counter()
            store.search("c", queries[len(seconds) % len(queries)], k=10)
            seconds.append(time.perf_counter() - asked)
            if seconds[-1] > 0.02:
                slow.append([round(asked - start, 3), round(seconds[-1], 3)])
        report["merged"] = store.wait_merged(timeout=600)
        store.close()
    seconds.sort()
    report.update(searches=len(seconds), search_max_s=round(seconds[-1], 3),
                  search_p50_ms=round(1000 * seconds[len(seconds) // 2], 2),
                  slow_searches_at_s_took_s=slow)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
