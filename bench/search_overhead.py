"""What a plain single search of the store costs above its compiled graph search, query
by query: where the time between the graph and the answer goes.

Builds a store of ``--n`` clustered vectors (``bench/ann.py``'s mixture; one segment,
graph searched) or of ``--npy`` vectors, searches every query once through the store (the
hit cache then holds their hits, and the search's way is kept), and times three calls
on each query, one call at a time:

* ``graph``: ``GraphView.search``, the compiled graph search alone (keys and scores);
* ``hits``: ``GraphView.hits``, the same search and the hits made from the hit cache in
  one call: the call a kept way makes (``store._direct``);
* ``store``: ``store.search``, the whole call a user makes.

Each pass gives query ``i`` to call ``(i + pass) % 3``, so every call follows a search
of another query (the CPU caches as a stream of searches leaves them) and, over three
passes, every query is timed once by each call; ``--rounds`` repeats the three passes.
Prints JSON: per call the median µs (and quartiles), and per pair of calls the median
and quartiles of their differences query by query (``hits - graph``: the hits made in
C; ``store - hits``: the interpreter's work around that call).

    .venv/bin/python bench/search_overhead.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import numpy as np

from graph_library import filled_collection, kept_way, vector_arguments, vectors  # (bench/)
from machine_info import machine

K, EF = 10, 64


def quartiles(values: np.ndarray) -> dict[str, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": round(float(median), 1), "p25": round(float(q1), 1),
            "p75": round(float(q3), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    vector_arguments(parser, queries=500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if bool(args.npy) != bool(args.queries_npy):
        parser.error("--npy and --queries-npy go together")
    from embedops.store import open_store, quantization
    from embedops.store.catalog import lookup

    base, held = vectors(args.npy, args.queries_npy, args.n, args.queries)
    queries = [q[None, :].copy() for q in held[:args.queries]]
    report: dict[str, Any] = {"machine": machine(), "n": len(base), "dim": base.shape[1],
                              "k": K, "ef": EF, "queries": len(queries),
                              "rounds": args.rounds,
                              "load_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as folder, open_store(Path(folder) / "s") as store:
        filled_collection(store, base, {"exact_threshold": 0})
        for q in queries:  # (every query's hits cached)
            store.search("b", q, K, ef=EF)
        view, depth, cached = kept_way(store, queries, EF)
        assert depth == EF
        row = lookup(store.conn, "b")
        scales = [quantization.one_query(q, row.dim, row.metric)[1] for q in queries]
        calls = {"graph": lambda i: view.search(queries[i], K, EF),
                 "hits": lambda i: view.hits(queries[i], K, EF, cached, scales[i]),
                 "store": lambda i: store.search("b", queries[i], K, ef=EF)}
        names = list(calls)
        times = {name: np.zeros((args.rounds, len(queries))) for name in names}
        for done in range(3 * args.rounds):
            for i in range(len(queries)):
                name = names[(i + done) % 3]
                call = calls[name]
                started = perf_counter_ns()
                call(i)
                times[name][done // 3, i] = (perf_counter_ns() - started) / 1000
    report["load_at_end"] = round(os.getloadavg()[0], 2)
    report["us_per_search"] = {name: quartiles(t.ravel()) for name, t in times.items()}
    report["differences_us"] = {
        f"{a} - {b}": quartiles((times[a] - times[b]).ravel())
        for a, b in (("hits", "graph"), ("store", "hits"), ("store", "graph"))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
