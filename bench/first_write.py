"""Searches during the first write after a store is opened: the first insert into a
graph read from a checkpoint copies all of faiss's arrays.

Copies a store that ``bench/store_footprint.py --keep DIR --data clustered`` left, opens
the copy, answers one search (the graph loads), upserts ``--points`` new points and
searches for ``--seconds`` (one thread,
back to back) while the background merger inserts them. Prints JSON: the longest search
and the median, and the searches slower than 20 ms. With ``--write-every S`` a second
thread upserts ``--write-points`` more points every ``S`` seconds while the searches run
(a real-time writer beside them), and the report adds its upserts' longest and median
time. With ``--reader`` the searches run on a read-only handle of the same store
(another process's view: it catches up with the writes at its next search). Compare
checkouts by running it with ``PYTHONPATH=<checkout>/src``.

    .venv/bin/python bench/first_write.py --path /tmp/s1m-int8 --n 1000000
    .venv/bin/python bench/first_write.py --path /tmp/s1m-int8 --n 1000000 --write-every 0.05
    .venv/bin/python bench/first_write.py --path /tmp/s1m-f32 --n 1000000 --reader
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
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
    parser.add_argument("--write-every", type=float, default=0.0,
                        help="seconds between a writer thread's upserts (0: no writer)")
    parser.add_argument("--write-points", type=int, default=10)
    parser.add_argument("--reader", action="store_true",
                        help="search through a read-only handle of the store")
    args = parser.parse_args()
    most = 0 if not args.write_every else int(args.seconds / args.write_every + 1)
    needed = args.points + most * args.write_points
    data = ClusteredBlocks(args.n + needed, DIM)
    queries = data.queries(50)
    fresh = data[args.n:args.n + needed]  # (the points written: row args.n on)
    report: dict[str, object] = {"n": args.n, "points": args.points,
                                 "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(dir=args.path.parent) as folder:
        shutil.copytree(args.path, Path(folder) / "s")
        os.sync()  # (else the copy's dirty pages reach the disk inside the first fsyncs)
        store = open_store(Path(folder) / "s")
        searcher = open_store(Path(folder) / "s", read_only=True) if args.reader else store
        began = time.perf_counter()
        searcher.search("c", queries[0], k=10)
        report["first_search_s"] = round(time.perf_counter() - began, 3)
        if args.reader:
            store.search("c", queries[0], k=10)  # (the writer's graph loads too)
        ids, payloads = batch_points(args.n, args.n + args.points)
        began = time.perf_counter()
        store.upsert("c", ids, fresh[:args.points], payloads, fingerprint="bench")
        report["upsert_s"] = round(time.perf_counter() - began, 3)
        seconds: list[float] = []
        slow: list[list[float]] = []
        writes: list[float] = []
        slow_writes: list[list[float]] = []
        stop = threading.Event()

        def writer() -> None:  # (a real-time writer: small upserts at a steady pace)
            lo = args.n + args.points
            while not stop.wait(args.write_every) and len(writes) < most:
                hi = lo + args.write_points
                ids, payloads = batch_points(lo, hi)
                asked = time.perf_counter()
                store.upsert("c", ids, fresh[lo - args.n:hi - args.n], payloads,
                             fingerprint="bench")
                writes.append(time.perf_counter() - asked)
                if writes[-1] > 0.02:
                    slow_writes.append([round(asked - start, 3), round(writes[-1], 3)])
                lo = hi

        thread = threading.Thread(target=writer)
        start = time.perf_counter()
        if args.write_every:
            thread.start()
        while time.perf_counter() - start < args.seconds:
            asked = time.perf_counter()
            searcher.search("c", queries[len(seconds) % len(queries)], k=10)
            seconds.append(time.perf_counter() - asked)
            if seconds[-1] > 0.02:
                slow.append([round(asked - start, 3), round(seconds[-1], 3)])
        stop.set()
        if args.write_every:
            thread.join()
        report["merged"] = store.wait_merged(timeout=600)
        if args.reader:
            report["reader_merged"] = searcher.wait_merged(timeout=600)
            searcher.close()
        store.close()
    seconds.sort()
    report.update(searches=len(seconds), search_max_s=round(seconds[-1], 3),
                  search_p50_ms=round(1000 * seconds[len(seconds) // 2], 2),
                  slow_searches_at_s_took_s=slow)
    if writes:
        writes.sort()
        report.update(upserts=len(writes), upsert_max_s=round(writes[-1], 3),
                      upsert_p50_ms=round(1000 * writes[len(writes) // 2], 2),
                      slow_upserts_at_s_took_s=slow_writes)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
