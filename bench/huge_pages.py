"""The store's HNSW graph built and searched with and without huge pages under faiss's arrays.

Each build runs in a process of its own, alternating run by run between
``EMBEDOPS_HUGE_PAGES=0`` (faiss's arrays on 4 KiB pages, as before) and the default (the
graph asks for huge pages under them, ``store/huge_pages.py``): ``HnswGraph.add`` of
``bench/store_footprint.py``'s clustered vectors (M = 16, ef_construction = 128, the
store's defaults) in batches of 10,000, timed batch by batch, each inserted as the store
inserts it (on a grown copy where the arrays would be outgrown, ``copy_due``, else in
place); then single queries
searched by ``HnswGraph.search_row`` (the store's single-query path) at ef 64, one
thread, three passes. Per build: the build rate overall and in the first and the last
tenth, last ÷ first, searches per second (median of the passes), recall@10 against exact
search on a sample, and the anonymous memory on huge pages at the end. The summary gives
the median and range of each figure per setting and the with ÷ without ratios pair by
pair. Prints JSON.

    .venv/bin/python bench/huge_pages.py --n 1000000 --runs 3 [--dtype int8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from embedops.store import quantization
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import DEFAULT_PARAMS
from embedops.store.huge_pages import HugePages
from run_stats import summary  # bench/ is the script's directory
from store_footprint import clustered

BATCH = 10_000
QUERIES = 1_000
TRUTH_QUERIES = 200
K, EF = 10, 64


def _anon_huge_kib() -> int:
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return 0


def one_build(n: int, dtype: str) -> dict[str, Any]:
    """Build, time and search one graph in this process."""
    points, queries = clustered(n, 384, QUERIES)
    graph = HnswGraph(384, "cosine", dtype, int(DEFAULT_PARAMS["connectivity"]),
                      int(DEFAULT_PARAMS["expansion_add"]))
    clip = quantization.calibrate(points[:10_000])  # (int8: as the store calibrates)
    seconds = []
    advice: dict[int, HugePages] = {}
    for start in range(0, n, BATCH):
        rows = points[start:start + BATCH]
        if dtype == "int8":
            rows = quantization.quantize(rows, clip).astype(np.float32)
        keys = np.arange(start, start + len(rows), dtype=np.int64)
        began = time.perf_counter()
        if graph.copy_due(len(rows)):  # (as the store grows a graph: ``HnswIndex``)
            graph.adopt(graph.grown_copy(rows), keys, rows)
        else:
            graph.add(keys, rows)
        seconds.append(time.perf_counter() - began)
        advice[id(graph._huge)] = graph._huge  # (each grown copy has its own)
    tenth = max(1, len(seconds) // 10)
    first = tenth * BATCH / sum(seconds[:tenth])
    last = tenth * BATCH / sum(seconds[-tenth:])
    rows = [np.ascontiguousarray(q, dtype=np.float32) for q in queries]
    if dtype == "int8":
        rows = [np.ascontiguousarray(q * (127 / clip), dtype=np.float32) for q in queries]
    passes = []
    for _ in range(3):
        began = time.perf_counter()
        for row in rows:
            graph.search_row(row, K, EF)
        passes.append(len(rows) / (time.perf_counter() - began))
    truth = np.argsort(-(queries[:TRUTH_QUERIES] @ points.T), axis=1)[:, :K]
    found = [graph.search_row(rows[i], K, EF)[0] for i in range(TRUTH_QUERIES)]
    recall = np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
    return {"huge_pages": os.environ.get("EMBEDOPS_HUGE_PAGES", "1") != "0",
            "build_seconds": round(sum(seconds), 1),
            "build_points_per_s": round(n / sum(seconds)),
            "first_tenth_points_per_s": round(first),
            "last_tenth_points_per_s": round(last),
            "last_over_first": round(last / first, 3),
            "qps_ef64": round(float(np.median(passes))),
            "recall_at_10": round(float(recall), 4),
            "anon_huge_mib": _anon_huge_kib() // 1024,
            "collapsed_mib": sum(a.collapsed_bytes for a in advice.values()) >> 20,
            "refused_mib": sum(a.refused_bytes for a in advice.values()) >> 20,
            "advice_seconds": round(sum(a.seconds for a in advice.values()), 2)}


def _child(n: int, dtype: str, huge: bool) -> dict[str, Any]:
    env = dict(os.environ, EMBEDOPS_HUGE_PAGES="1" if huge else "0")
    out = subprocess.run([sys.executable, __file__, "--one", "--n", str(n), "--dtype", dtype],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--dtype", choices=("float32", "int8"), default="float32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_build(args.n, args.dtype)))
        return
    builds: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for run in range(args.runs):
        for huge in ((False, True) if run % 2 == 0 else (True, False)):
            builds[huge].append(_child(args.n, args.dtype, huge))
            print(json.dumps(builds[huge][-1]), file=sys.stderr, flush=True)
    figures = ("build_points_per_s", "first_tenth_points_per_s", "last_tenth_points_per_s",
               "last_over_first", "qps_ef64", "recall_at_10")
    result: dict[str, Any] = {"n": args.n, "dtype": args.dtype, "runs": args.runs,
                              "uptime_at_start": os.getloadavg()}
    for huge, name in ((False, "without"), (True, "with")):
        result[name] = {f: summary([b[f] for b in builds[huge]], 0 if f.endswith("_s") else 3)
                        for f in figures}
    result["with_over_without"] = {
        f: summary([w[f] / o[f] for w, o in zip(builds[True], builds[False], strict=True)], 3)
        for f in figures if f != "recall_at_10"}
    result["builds"] = builds
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
