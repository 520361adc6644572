"""One query against an index with points pending a merge: ``HnswIndex.search_one``,
which merges the pending segment's scores into the graph's itself, against the general
batch path it took before (``HnswIndex.search`` of a one-row batch, then ``tolist``),
alternating in the same run.

An index of ``--n`` clustered float32 points (batches of 10,000) is built once; for each
pending count a copy of it takes that many further points deferred (the pending segment,
as a write leaves them until the background merger moves them) and answers ``--queries``
held-out queries at k = 10 both ways, ``--runs`` times. Prints JSON: µs per query per way
(median (min–max) over the runs) and general ÷ one-query time, run by run.

    .venv/bin/python bench/pending_search.py --n 100000 --pending 0,100,1000,10000
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from embedops.store.hnsw_index import HnswIndex
from run_stats import summary
from store_footprint import BATCH, ClusteredBlocks

DIM, K = 384, 10


def timed(queries: np.ndarray, ask: Callable[[np.ndarray], object]) -> float:
    """µs per query of ``ask`` over ``queries`` (one row each)."""
    began = time.perf_counter()
    for row in queries:
        ask(row[None, :])
    return 1e6 * (time.perf_counter() - began) / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--pending", default="0,100,1000,10000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    counts = [int(c) for c in args.pending.split(",")]
    data = ClusteredBlocks(args.n + max(counts), DIM)
    queries = data.queries(args.queries)
    load_at_start = os.getloadavg()[0]
    base = HnswIndex(DIM, "cosine", "float32", {}, None)
    for start in range(0, args.n, BATCH):
        end = min(start + BATCH, args.n)
        base.add(np.arange(start, end), data[start:end])
    report: dict[str, object] = {
        "n": args.n, "queries": args.queries, "runs": args.runs, "k": K,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "load_at_start": load_at_start}
    for count in counts:
        index = copy.copy(base)  # (the graph is shared; only the pending segment differs)
        index._pending, index._pending_buffer = {}, None
        if count:
            index.add(np.arange(args.n, args.n + count), data[args.n:args.n + count],
                      defer=True)
        assert index.pending == count

        def general(query: np.ndarray, index: HnswIndex = index) -> object:
            keys, scores = index.search(query, K, threads=1)
            return keys[0].tolist(), scores[0].tolist()

        def one(query: np.ndarray, index: HnswIndex = index) -> object:
            return index.search_one(query, K)

        timed(queries[:50], one)  # (warm)
        old, new = [], []
        for _ in range(args.runs):
            old.append(timed(queries, general))
            new.append(timed(queries, one))
        report[f"pending_{count}"] = {
            "general_us": summary(old), "search_one_us": summary(new),
            "general_over_one_by_run": [round(o / n, 2) for o, n in zip(old, new,
                                                                         strict=True)]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
