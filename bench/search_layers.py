"""Where two searching threads lose their second core: the store's search path layer by
layer, one thread against two.

Builds a store of ``--n`` clustered × 384 points (``bench/ann.py``'s mixture), then for
each layer of a single-query search — the graph search alone, the search plan with
hits and payloads, the index lock, a pooled read connection, the whole ``store.search``
— runs ``--queries`` queries on one thread and the same queries split over two, and
prints one thread's QPS and the two-thread ratio per pass. The layers up to the whole
``store.search`` serve ids and payloads from a dictionary instead of SQLite, so they
differ only in the Python they add; the last two are the real search, with the store's
hit cache (warm: the queries repeat) and without it (every id and payload read from
SQLite). Reaches into the store's private parts on purpose.

    .venv/bin/python bench/search_layers.py --n 50000 --passes 3
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ann import make_data, threaded_qps  # bench/ is the script's directory
from embedops.store import open_store
from embedops.store.catalog import lookup
from embedops.store.hit_cache import HIT_CACHE_BYTES

K, EF = 10, 64


def layers(store: Any) -> dict[str, Callable[[np.ndarray], Any]]:
    row = lookup(store.conn, "b")
    index = store._indexes.live[row.cid].index
    searcher = store._search
    real_fetch = searcher._fetch
    (db,) = [p for p in Path(store.path).glob("store.sqlite")]
    rows = {r[0]: r for r in sqlite3.connect(db).execute(
        "SELECT rowkey, id, payload FROM points")}

    def from_memory(keys: np.ndarray, with_vectors: bool, where: Any = None) -> dict:
        return {k: rows[k] for k in keys.tolist() if k in rows}

    def graph(q: np.ndarray) -> Any:
        return index.search(q[None, :], K, ef=EF, threads=1)

    def plan(q: np.ndarray) -> Any:
        return searcher.search(row, q[None, :], K, None, EF, False)

    def locked(q: np.ndarray) -> Any:
        with store._index_lock.shared():
            return plan(q)

    def pooled(q: np.ndarray) -> Any:
        with store._readers.reader() as reader:
            store._local.reader = reader
            try:
                return locked(q)
            finally:
                store._local.reader = None

    def whole(q: np.ndarray) -> Any:
        return store.search("b", q, K, ef=EF)

    def memory(search: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
        def run(q: np.ndarray) -> Any:
            searcher._fetch = from_memory
            try:
                return search(q)
            finally:
                searcher._fetch = real_fetch
        return run

    return {"graph search": graph, "+ plan, hits, payloads": memory(plan),
            "+ index lock": memory(locked), "+ pooled read connection": memory(pooled),
            "+ query checks, catalog row (store.search)": memory(whole),
            "store.search, ids and payloads from the hit cache": whole,
            UNCACHED: whole}


UNCACHED = "store.search, ids and payloads from SQLite (hit cache off)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    base, held_out = make_data(args.n, 1000, 384)
    queries = np.concatenate([held_out] * (args.queries // len(held_out) + 1))[:args.queries]
    report: dict[str, Any] = {"n": args.n, "queries": args.queries, "cpus": os.cpu_count(),
                              "load_at_start": os.getloadavg()[0], "layers": {}}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "s")
        store.create_collection("b", 384, fingerprint="bench",
                                index_params={"exact_threshold": 0})
        for lo in range(0, args.n, 10_000):
            store.upsert("b", [str(i) for i in range(lo, min(lo + 10_000, args.n))],
                         base[lo:lo + 10_000],
                         [{"n": i} for i in range(lo, min(lo + 10_000, args.n))],
                         fingerprint="bench")
        store.wait_merged(3600)
        store.search("b", queries[0], K)
        for _ in range(args.passes):
            for name, search in layers(store).items():
                store.hit_cache_bytes = 0 if name == UNCACHED else HIT_CACHE_BYTES
                for q in queries[:1000]:  # (fills the hit cache again after a reset)
                    search(q)
                one = threaded_qps(search, queries, 1)
                two = threaded_qps(search, queries, 2)
                entry = report["layers"].setdefault(name, {"one_thread_qps": [],
                                                           "two_over_one": []})
                entry["one_thread_qps"].append(round(one))
                entry["two_over_one"].append(round(two / one, 2))
        store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
