"""How often one search lets go of the interpreter lock, against raw faiss.

Each hand-over of the interpreter lock is a point where a second searching thread can
take it and the first must wait for it back. This script counts them without reading
any code: beside a thread that spins in pure Python (and so never lets go of the lock
by itself), every hand-over costs the searching thread up to the interpreter's switch
interval (5 ms) before it runs again. So

    hand-overs per query ≈ (time per query beside the spinner − time alone) / 5 ms

for raw faiss (``IndexHNSWFlat``, the same M, construction depth and ef), the store's
graph layer, and the whole ``store.search`` on ``--n`` clustered × 384 points
(``bench/ann.py``'s mixture).
A search that needs one hand-over (the graph search itself, which runs without the lock)
reads about 1; anything above that is interpreter work that lets go of the lock
besides. Reaches into the store's private parts on purpose.

    .venv/bin/python bench/lock_handovers.py --n 20000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

from ann import make_data, only_graph  # bench/ is the script's directory
from embedops.store import open_store
from embedops.store.catalog import lookup

K, EF, M, EF_ADD = 10, 64, 16, 128  # (the store's defaults)


def per_query_us(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    start = time.perf_counter()
    for query in queries:
        search(query.reshape(1, -1))
    return (time.perf_counter() - start) / len(queries) * 1e6


def beside_a_spinner(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    stopped = [False]

    def spin() -> None:
        while not stopped[0]:  # (pure Python: lets go of the lock only when made to)
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    time.sleep(0.05)
    try:
        return per_query_us(search, queries)
    finally:
        stopped[0] = True
        spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    data, queries = make_data(args.n, args.queries, 384)

    store = open_store(tempfile.mkdtemp(prefix="handovers-") + "/store")
    store.create_collection("b", 384, fingerprint="bench", index_params={"connectivity": M})
    for start in range(0, args.n, 10_000):
        end = min(start + 10_000, args.n)
        store.upsert("b", [str(i) for i in range(start, end)], data[start:end],
                     [{"i": i} for i in range(start, end)], fingerprint="bench")
    store.wait_merged()
    for query in queries:  # (loads the index, fills the hit cache)
        store.search("b", query.reshape(1, -1), K)
    graph = only_graph(store._indexes.live[lookup(store.conn, "b").cid].index)

    raw = faiss.IndexHNSWFlat(384, M, faiss.METRIC_INNER_PRODUCT)
    raw.hnsw.efConstruction = EF_ADD
    raw.add(data)
    raw.hnsw.efSearch = EF
    faiss.omp_set_num_threads(1)

    systems: dict[str, Callable[[np.ndarray], Any]] = {
        "raw_faiss": lambda q: raw.search(q, K),
        "store_graph": lambda q: graph.search(q, K, EF),
        "store_search": lambda q: store.search("b", q, K, ef=EF),
    }
    interval_us = sys.getswitchinterval() * 1e6
    report: dict[str, Any] = {"n": args.n, "queries": args.queries, "ef": EF,
                              "switch_interval_us": interval_us}
    for name, search in systems.items():
        alone = per_query_us(search, queries)
        spun = beside_a_spinner(search, queries)
        report[name] = {"alone_us": round(alone, 1), "beside_spinner_us": round(spun, 1),
                        "handovers_per_query": round((spun - alone) / interval_us, 2)}
    report["store_over_raw_handovers"] = round(
        report["store_search"]["handovers_per_query"]
        / max(report["raw_faiss"]["handovers_per_query"], 1e-9), 2)
    report["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
