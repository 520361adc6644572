"""A bulk load through one store handle: how long until every point is in the graph, and
how much memory the load takes on the way.

Writes ``--n`` points of ``store_footprint``'s clustered mixture (``--data
clustered-blocks``) in batches of 10,000 into a fresh store, back to back, through one
handle that stays open, then waits until nothing is pending a merge. A thread samples
``index_memory_bytes()`` every second meanwhile (no SQL, no disk: the graph, and the
points pending a merge counted as merged plus their float32 copies). Prints one JSON
object: seconds in the upserts, seconds of the drain after them, points per second
overall, the most index bytes sampled, and the process's peak resident memory
(``VmHWM``).

    .venv/bin/python bench/bulk_load.py --n 1000000
    PYTHONPATH=<checkout>/src:bench .venv/bin/python bench/bulk_load.py ...  # another commit
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

from embedops.store import open_store
from store_footprint import BATCH, ClusteredBlocks, batch_points

DIM = 384


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dtype", default="int8")
    args = parser.parse_args()
    data = ClusteredBlocks(args.n, DIM)
    load = round(os.getloadavg()[0], 2)
    most = [0]
    stop = threading.Event()
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        store = open_store(Path(folder) / "s")
        store.create_collection("c", DIM, dtype=args.dtype, fingerprint="bench",
                                index_params={"exact_threshold": 0})

        def sample() -> None:
            while not stop.wait(1.0):
                most[0] = max(most[0], store.index_memory_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        for start in range(0, args.n, BATCH):
            end = min(start + BATCH, args.n)
            ids, payloads = batch_points(start, end)
            store.upsert("c", ids, data[start:end], payloads, fingerprint="bench")
        written = time.perf_counter()
        store.wait_merged(timeout=24 * 3600)
        merged = time.perf_counter()
        stop.set()
        sampler.join()
        final = store.index_memory_bytes()
        store.close()
    print(json.dumps({
        "n": args.n, "dtype": args.dtype, "load_at_start": load,
        "upserts_s": round(written - began, 1), "drain_s": round(merged - written, 1),
        "points_per_s": round(args.n / (merged - began)),
        "index_bytes_most": most[0], "index_bytes_final": final,
        "peak_rss_bytes": _peak_rss(),
        "machine": f"{platform.machine()}, CPython {platform.python_version()}"}))


if __name__ == "__main__":
    main()
