"""Per-query cost of the embedded store against the raw HNSW libraries, in one run.

On the same vectors and queries: single-query QPS and recall@10 at several search depths
for the embedded store (a read-write handle, payloads returned as a caller gets them;
``store-uncached``: the same with its hit cache off, every id and payload read from
SQLite) and
for raw faiss ``IndexHNSWFlat`` and, when installed, raw usearch and raw hnswlib, all
built with M = 16 and ef_construction = 128; then two threads searching together against
one, both as a share of the queries each (``ann.threaded_qps``: the run ends when the
slower thread is through) and over a window of ``--window`` seconds
(``ann.windowed_qps``: every thread searches for the whole window, one thread timed
the same way). ``--runs`` repetitions of the timed part alternate the systems; each
figure is the median with the range. Prints JSON, including ``store_over_<library>`` (and
``store-uncached_over_<library>``) per depth: the store's QPS divided by the library's,
run by run.

    .venv/bin/python bench/graph_library.py --n 100000 --runs 3
    .venv/bin/python bench/graph_library.py --npy vectors.npy --queries-npy queries.npy \
        --passes 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ann import make_data, threaded_qps, timed_queries, windowed_qps  # (bench/)
from run_stats import summary

K = 10
M, EF_ADD = 16, 128
Search = Callable[[np.ndarray, int], list[int]]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def vectors(npy: str | None, queries_npy: str | None, n: int, q: int, dim: int = 384
            ) -> tuple[np.ndarray, np.ndarray]:
    """The base vectors and the queries a run is given: ``npy`` (and ``queries_npy``,
    else ``npy``'s first ``q`` rows) as unit float32 rows, or ``n`` synthetic ones."""
    if npy:
        base = _unit(np.load(npy))
        return base, _unit(np.load(queries_npy)) if queries_npy else base[:q]
    return synthetic(n, q, dim)


def synthetic(n: int, q: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (bench/ann.py's mixture) and queries near them."""
    return make_data(n, q, dim)


def truth_of(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), K), dtype=np.int64)
    for lo in range(0, len(queries), 256):
        sims = queries[lo:lo + 256] @ base.T
        out[lo:lo + 256] = np.argsort(-sims, axis=1)[:, :K]
    return out


def vector_arguments(parser: argparse.ArgumentParser, queries: int) -> None:
    """The arguments that choose a run's vectors: ``--n`` synthetic ones or ``--npy``
    (with ``--queries-npy``), and how many ``--queries``."""
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--npy", help="base vectors (.npy, float32 N x D) instead of synthetic")
    parser.add_argument("--queries-npy", help="query vectors for --npy")


def kept_way(store: Any, queries: list[np.ndarray], ef: int) -> tuple[Any, int, Any]:
    """The one compiled call a kept plain single search of collection ``b`` (``K``,
    ``ef``) makes (``store._direct``): the graph view, its depth and the hit cache's
    rows, once two searches of ``queries`` have kept the way and taken it. Exits where
    the collection has no such way (several segments) or the hit cache does not hold
    the first query's hits (the call would return keys, not hits)."""
    from embedops.store import quantization
    from embedops.store.catalog import lookup

    for q in queries[:2]:  # (the first keeps the way, the second takes it)
        store.search("b", q, K, ef=ef)
    plan = store._direct["b", K, ef][2]
    if plan is None:
        raise SystemExit("no kept way for this collection (several segments?)")
    row = lookup(store.conn, "b")
    cached = store._search.hit_cache.rows(row.cid, row.seq)
    scale = quantization.one_query(queries[0], row.dim, row.metric)[1]
    if cached is None or type(plan[0].hits(queries[0], K, plan[1], cached, scale)) is not list:
        raise SystemExit("the hit cache does not hold every hit of the queries")
    return plan[0], plan[1], cached


def filled_collection(store: Any, base: np.ndarray, index_params: dict[str, Any]) -> None:
    """Collection ``b`` of ``store`` holding ``base`` (ids "0", "1", ...; payload
    ``{"n": i}``), every point merged into the graph and checkpointed."""
    store.create_collection("b", base.shape[1], fingerprint="bench",
                            index_params=index_params)
    ids = [str(i) for i in range(len(base))]
    for lo in range(0, len(base), 10_000):
        store.upsert("b", ids[lo:lo + 10_000], base[lo:lo + 10_000],
                     [{"n": i} for i in range(lo, min(lo + 10_000, len(base)))],
                     fingerprint="bench")
    store.wait_merged(3600)
    store.checkpoint("b")


def system_store(base: np.ndarray, folder: Path, hit_cache_bytes: int | None = None
                 ) -> tuple[Search, Callable[[], None]]:
    from embedops.store import open_store

    store = open_store(folder / "store", hit_cache_bytes=hit_cache_bytes)
    filled_collection(store, base, {"exact_threshold": 0, "connectivity": M,
                                    "expansion_add": EF_ADD})

    def search(q: np.ndarray, ef: int) -> list[int]:
        return [int(h.id) for h in store.search("b", q, K, ef=ef)[0]]

    return search, store.close


def system_faiss(base: np.ndarray, folder: Path) -> tuple[Search, Callable[[], None]]:
    import faiss

    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_ADD
    index.add(base)
    params: dict[int, Any] = {}

    def search(q: np.ndarray, ef: int) -> list[int]:
        if ef not in params:
            params[ef] = faiss.SearchParametersHNSW()
            params[ef].efSearch = ef
        return index.search(q[None, :], K, params=params[ef])[1][0].tolist()

    return search, lambda: None


def system_usearch(base: np.ndarray, folder: Path) -> tuple[Search, Callable[[], None]]:
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=M,
                  expansion_add=EF_ADD)
    index.add(np.arange(len(base)), base)

    def search(q: np.ndarray, ef: int) -> list[int]:
        index.expansion_search = ef
        return np.asarray(index.search(q, K).keys).tolist()

    return search, lambda: None


def system_hnswlib(base: np.ndarray, folder: Path) -> tuple[Search, Callable[[], None]]:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=M, ef_construction=EF_ADD)
    index.add_items(base, np.arange(len(base)))
    index.set_num_threads(1)

    def search(q: np.ndarray, ef: int) -> list[int]:
        index.set_ef(ef)
        return index.knn_query(q, K)[0][0].tolist()

    return search, lambda: None


def system_store_uncached(base: np.ndarray, folder: Path) -> tuple[Search, Callable[[], None]]:
    """The store with its hit cache off: every returned point's id and payload read from
    SQLite (the queries repeat, so with the cache on every hit is served from memory:
    the two bound what a workload between them gets)."""
    return system_store(base, folder, hit_cache_bytes=0)


SYSTEMS = {"store": (system_store, None), "store-uncached": (system_store_uncached, None),
           "faiss": (system_faiss, "faiss"),
           "usearch": (system_usearch, "usearch"), "hnswlib": (system_hnswlib, "hnswlib")}


def qps(search: Search, queries: np.ndarray, ef: int) -> float:
    return timed_queries(lambda q: search(q, ef), queries)[1]


def two_threads_qps(search: Search, queries: np.ndarray, ef: int) -> float:
    return threaded_qps(lambda q: search(q, ef), queries, threads=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    vector_arguments(parser, queries=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--ef", default="32,64,128")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=1.0,
                        help="seconds of each windowed one- and two-thread timing")
    parser.add_argument("--systems", default="store,store-uncached,faiss,usearch,hnswlib")
    parser.add_argument("--passes", type=int, default=1,
                        help="passes over the queries per timing (a small set's pass is "
                             "tens of ms: too short to time on a shared machine)")
    args = parser.parse_args()
    base, queries = vectors(args.npy, args.queries_npy, args.n, args.queries, args.dim)
    truth = truth_of(base, queries)
    efs = [int(e) for e in args.ef.split(",")]
    names = [s for s in args.systems.split(",")
             if SYSTEMS[s][1] is None or importlib.util.find_spec(SYSTEMS[s][1])]
    report: dict[str, Any] = {"n": len(base), "dim": base.shape[1], "queries": len(queries),
                              "runs": args.runs, "passes": max(1, args.passes),
                              "window_s": args.window,
                              "cpus": os.cpu_count(),
                              "load_at_start": os.getloadavg()[0], "systems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        built: dict[str, tuple[Search, Callable[[], None]]] = {}
        for name in names:
            started = time.perf_counter()
            built[name] = SYSTEMS[name][0](base, Path(tmp) / name)
            search = built[name][0]
            found = [search(q, 64) for q in queries]
            recall = {ef: float(np.mean([len(set(search(q, ef)) & set(t.tolist())) / K
                                         for q, t in zip(queries, truth, strict=True)]))
                      for ef in efs}
            for q in queries[:200]:
                search(q, 64)  # warm-up
            report["systems"][name] = {"build_s": round(time.perf_counter() - started, 1),
                                       "recall@10": recall, "hits_at_ef64": len(found[0])}
        timed: dict[tuple[str, int], list[float]] = {}
        passes = np.tile(queries, (max(1, args.passes), 1))
        for run in range(args.runs):
            for name in names:  # alternating: every system once per run
                for ef in efs:
                    timed.setdefault((name, ef), []).append(qps(built[name][0], passes, ef))
                timed.setdefault((name, -2), []).append(
                    two_threads_qps(built[name][0], passes, 64))
                timed.setdefault((name, -1), []).append(qps(built[name][0], passes, 64))
                for threads in ((2, 1) if run % 2 else (1, 2)):  # (windowed: -4 two
                    # threads, -3 one; which comes first alternates run by run)
                    timed.setdefault((name, -2 - threads), []).append(windowed_qps(
                        lambda q, s=built[name][0]: s(q, 64), queries, threads, args.window))
        for name in names:
            entry = report["systems"][name]
            entry["qps"] = {ef: summary(timed[(name, ef)], 0) for ef in efs}
            entry["two_threads_over_one_at_ef64_windowed"] = summary(
                [two / one for two, one in zip(timed[(name, -4)], timed[(name, -3)],
                                               strict=True)], 2)
            entry["two_threads_over_one_at_ef64"] = summary(
                [two / one for two, one in zip(timed[(name, -2)], timed[(name, -1)],
                                               strict=True)], 2)
            for store in ("store", "store-uncached"):
                if name not in ("store", "store-uncached") and store in names:
                    report[f"{store}_over_{name}"] = {ef: summary(
                        [s / r for s, r in zip(timed[(store, ef)], timed[(name, ef)],
                                               strict=True)], 2) for ef in efs}
        for _, close in built.values():
            close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
