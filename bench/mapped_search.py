"""Steady search speed of a checkpoint's graph mapped against the same graph read whole.

Loads one graph file both ways in one process (the file read through first, so that the
page cache holds it): ``faiss.read_index(file)`` (the baseline: what the store did
before it mapped large files) and ``faiss.read_index(file, IO_FLAG_MMAP_IFC)`` (what
it does now), then times ``--queries`` single queries at depth ``--ef`` on each,
alternating which goes first, ``--runs`` times. Queries are stored vectors plus a
little noise. Prints JSON: QPS per run for each, and mapped ÷ read per run (median,
min, max).

    .venv/bin/python bench/mapped_search.py --graph /tmp/s1m-int8/index/1-100.faiss
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import faiss
import numpy as np

from run_stats import summary  # bench/ is the script's directory


def qps(graph: faiss.Index, queries: np.ndarray, ef: int) -> float:
    params = faiss.SearchParametersHNSW(efSearch=ef)
    started = time.perf_counter()
    for row in range(len(queries)):
        graph.search(queries[row:row + 1], 10, params=params)
    return len(queries) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True, help="a checkpoint's .faiss")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", type=int, default=202)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with args.graph.open("rb") as file:  # (into the page cache)
        while file.read(64 << 20):
            pass
    graphs = {"read": faiss.read_index(str(args.graph)),
              "mapped": faiss.read_index(str(args.graph), faiss.IO_FLAG_MMAP_IFC)}
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    base = graphs["read"]
    rows = base.reconstruct_batch(rng.integers(0, base.ntotal, args.queries))
    queries = (rows + 0.05 * rng.standard_normal(rows.shape)).astype(np.float32)
    for graph in graphs.values():  # (a warming pass each)
        qps(graph, queries, args.ef)
    runs: dict[str, list[float]] = {"read": [], "mapped": []}
    for run in range(args.runs):
        for name in (("read", "mapped") if run % 2 == 0 else ("mapped", "read")):
            runs[name].append(qps(graphs[name], queries, args.ef))
    ratios = [m / r for m, r in zip(runs["mapped"], runs["read"], strict=True)]
    print(json.dumps({"graph": str(args.graph), "nodes": int(base.ntotal), "ef": args.ef,
                      "load_at_start": os.getloadavg()[0],
                      "qps": {name: [round(x) for x in values] for name, values in runs.items()},
                      "mapped_over_read": summary(ratios, 3)}))


if __name__ == "__main__":
    main()
