"""The store's compiled graph search against faiss's own search of the same graph.

One faiss ``IndexHNSWFlat`` (M = 16, ef_construction = 128) is built from the vectors;
then, alternating run by run, single queries are searched by faiss (``search_c`` on one
query with the thread's OpenMP team at one thread, the way the store's faiss path calls
it) and by the compiled search (``graph_search.GraphView.search`` over the same arrays).
For each depth: recall@10 against exact search, the share of queries whose top-10 list
is the same in both, and queries per second (median and range over ``--runs``, and the
compiled ÷ faiss ratio run by run); then two threads searching together against one,
for each. With ``--removed``, a share of the nodes is removed first, and each search's
depth is widened as the store widens it. Prints JSON.

    .venv/bin/python bench/graph_search.py --n 100000 --runs 5
    .venv/bin/python bench/graph_search.py --npy vectors.npy --queries-npy queries.npy \
        --passes 10 [--removed 0.25] [--dtype int8]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

from ann import threaded_qps  # bench/ is the script's directory
from embedops.store import graph_search, quantization
from graph_library import vectors
from run_stats import summary

K, M, EF_ADD = 10, 16, 128
Search = Callable[[np.ndarray, int], list[int]]


class _Outputs(threading.local):
    """A thread's output arrays for faiss and faiss's pointers to them; its OpenMP team
    set to one thread on its first search."""

    ready = False

    def make(self) -> None:
        faiss.omp_set_num_threads(1)
        self.distances = np.empty((1, K), dtype=np.float32)
        self.found = np.empty((1, K), dtype=np.int64)
        self.pointers = (faiss.swig_ptr(self.distances), faiss.swig_ptr(self.found))
        self.ready = True


def faiss_search(index: faiss.IndexHNSWFlat, alive: np.ndarray, widen: float) -> Search:
    """One query through faiss, as the store's faiss path calls it (``search_c``, output
    arrays kept per thread, one OpenMP thread; with removed nodes, the bitmap of the live
    ones as a selector and the depth widened by ``widen``)."""
    params: dict[int, faiss.SearchParametersHNSW] = {}
    selector = faiss.IDSelectorBitmap(len(alive), faiss.swig_ptr(alive))
    for ef in (16, 32, 64, 128, 256):
        params[ef] = faiss.SearchParametersHNSW()
        params[ef].efSearch = int(ef * widen)
        if widen > 1:
            params[ef].sel = selector
            params[ef].referenced = (selector, alive)  # (faiss keeps no reference)
    outputs = _Outputs()

    def search(q: np.ndarray, ef: int) -> list[int]:
        if not outputs.ready:
            outputs.make()
        index.search_c(1, faiss.swig_ptr(q), K, *outputs.pointers, params[ef])
        return outputs.found[0].tolist()  # type: ignore[no-any-return]

    return search


def compiled_search(index: faiss.IndexHNSWFlat, labels: np.ndarray, alive: np.ndarray,
                    widen: float) -> Search:
    view = graph_search.view_of(index, labels, alive)
    if view is None:
        raise SystemExit("the compiled search is not built (or EMBEDOPS_GRAPH_SEARCH=faiss)")

    def search(q: np.ndarray, ef: int) -> list[int]:
        return view.search(q, K, int(ef * widen))[0]  # type: ignore[no-any-return]

    return search


def graph_keys(n: int, removed: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Node keys (-1 for removed nodes, and in the last slot) and the live nodes' bitmap,
    a share ``removed`` of the ``n`` nodes removed at random."""
    labels = np.arange(n + 1, dtype=np.int64)
    labels[-1] = -1
    gone = np.random.default_rng(seed).choice(n, int(removed * n), replace=False)
    labels[gone] = -1
    bits = np.zeros((n // 8 + 2) * 8, dtype=bool)
    bits[:n] = labels[:n] >= 0
    return labels, np.packbits(bits, bitorder="little")


def qps(search: Search, queries: np.ndarray, ef: int) -> float:
    started = time.perf_counter()
    for q in queries:
        search(q, ef)
    return len(queries) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--npy", help="base vectors (.npy, float32 N x D) instead of synthetic")
    parser.add_argument("--queries-npy", help="query vectors for --npy")
    parser.add_argument("--ef", default="16,32,64,128", help="depths, each of 16-256")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--passes", type=int, default=1,
                        help="passes over the queries per timing")
    parser.add_argument("--dtype", choices=["float32", "int8"], default="float32",
                        help="int8: the graph holds the store's int8 codes (an IndexHNSWSQ), "
                             "searched with the queries as codes, as the store searches it")
    parser.add_argument("--removed", type=float, default=0.0,
                        help="share of the nodes removed (tombstones); each search's depth "
                             "is then widened as the store widens it: by 4x the share for "
                             "faiss, 2x for the compiled search (HnswIndex._depth)")
    args = parser.parse_args()
    base, queries = vectors(args.npy, args.queries_npy, args.n, args.queries)
    faiss.omp_set_num_threads(1)  # (single queries: no OpenMP team, as the store runs them)
    started = time.perf_counter()
    if args.dtype == "int8":  # the store's codes (``quantization``), as its graph holds them
        index = faiss.IndexHNSWSQ(base.shape[1], faiss.ScalarQuantizer.QT_8bit_direct_signed,
                                  M, faiss.METRIC_INNER_PRODUCT)
        index.train(np.zeros((1, base.shape[1]), dtype=np.float32))
        clip = quantization.calibrate(base)
        rows, searched = quantization.quantize(base, clip), quantization.quantize(queries, clip)
    else:
        index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        rows, searched = base, queries
    index.hnsw.efConstruction = EF_ADD
    index.add(np.ascontiguousarray(rows, dtype=np.float32))
    labels, alive = graph_keys(len(base), args.removed)
    live = np.flatnonzero(labels[:-1] >= 0)
    truth = live[np.argsort(-(queries @ base[live].T), axis=1)[:, :K]]
    systems = {"faiss": faiss_search(index, alive, 1 + 4 * args.removed),
               "compiled": compiled_search(index, labels, alive, 1 + 2 * args.removed)}
    efs = [int(e) for e in args.ef.split(",")]
    report: dict[str, Any] = {"n": len(base), "dtype": args.dtype, "removed": args.removed,
                              "dim": base.shape[1], "queries": len(queries),
                              "runs": args.runs, "passes": max(1, args.passes),
                              "cpus": os.cpu_count(), "load_at_start": os.getloadavg()[0],
                              "build_s": round(time.perf_counter() - started, 1)}
    queries = np.ascontiguousarray(searched, dtype=np.float32)
    answers = {name: {ef: [search(q, ef) for q in queries] for ef in efs}
               for name, search in systems.items()}
    report["recall@10"] = {name: {ef: round(float(np.mean(
        [len(set(a) & set(t.tolist())) / K for a, t in zip(found, truth, strict=True)])), 4)
        for ef, found in per_ef.items()} for name, per_ef in answers.items()}
    report["same_top10_share"] = {ef: round(float(np.mean(
        [a == b for a, b in zip(answers["faiss"][ef], answers["compiled"][ef],
                                strict=True)])), 3) for ef in efs}
    passes = np.tile(queries, (max(1, args.passes), 1))
    timed: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.runs):
        for name, search in systems.items():  # alternating: each once per run
            for ef in efs:
                timed.setdefault((name, ef), []).append(qps(search, passes, ef))
            timed.setdefault((name, -1), []).append(qps(search, passes, 64))
            timed.setdefault((name, -2), []).append(
                threaded_qps(lambda q, s=search: s(q, 64), passes, threads=2))
    report["qps"] = {name: {ef: summary(timed[(name, ef)], 0) for ef in efs}
                     for name in systems}
    report["compiled_over_faiss"] = {ef: summary(
        [c / f for c, f in zip(timed[("compiled", ef)], timed[("faiss", ef)], strict=True)], 3)
        for ef in efs}
    report["two_threads_over_one_at_ef64"] = {name: summary(
        [two / one for two, one in zip(timed[(name, -2)], timed[(name, -1)], strict=True)], 3)
        for name in systems}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
