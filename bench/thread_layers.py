"""Two threads against one, layer by layer of a single search: where the store's
two-thread scaling goes.

Builds a store of ``--npy`` vectors (or ``--n`` clustered ones, ``bench/ann.py``'s
mixture; one segment, graph searched: ``exact_threshold`` 0), then times each layer of
the single-query path alone and from two threads at once (``bench/ann.py``'s
``threaded_qps``: each thread takes every other query), ``--runs`` times, the layers
alternating within each run:

* ``graph``: ``HnswGraph.search_row``, the compiled graph search (interpreter lock
  released while it walks the graph);
* ``graph+python``: the same and ~``--python-us`` µs of interpreter work that touches
  no object the other thread uses (a loop over a ``range``, whose ints are freed as
  they are made): the control, the interpreter lock held about as long as the store's
  layers hold it (``index``, ``plan`` and ``store`` each include the layers before
  them, not this one);
* ``hits``: the call a plain single search makes once its way is kept (``store._direct``):
  ``GraphView.hits``, the compiled graph search and the hits made from the hit cache in
  one call, with no Python around it;
* ``index``: the loaded index's ``search_one`` (``SegmentedIndex`` of one segment in
  the default layout, ``HnswIndex`` with ``--segment-size 0``: pending points, shared
  nodes, padding);
* ``plan``: ``IndexManager.ready`` and ``Searcher.search_one`` under the index lock
  (the plan and the hits);
* ``store``: ``store.search``, the whole call a user makes.

Runs alternate which comes first, two threads or one. Prints JSON: per layer the
one-thread QPS and µs a search (medians) and two threads ÷ one, run by run (median and
range).

    .venv/bin/python bench/thread_layers.py --npy vectors.npy --queries-npy queries.npy
    .venv/bin/python bench/thread_layers.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ann import make_data, only_graph, threaded_qps, timed_queries  # (bench/)
from graph_library import filled_collection, kept_way, vector_arguments
from run_stats import summary

K, EF = 10, 64


def busy_loop(microseconds: float) -> Callable[[], None]:
    """Interpreter work of about ``microseconds`` that touches nothing shared."""
    started = time.perf_counter()
    for _ in range(200_000):
        pass
    per_us = 200_000 / ((time.perf_counter() - started) * 1e6)
    count = int(microseconds * per_us)

    def work() -> None:
        for _ in range(count):
            pass

    return work


def layers(store: Any, python_us: float, rows: list[np.ndarray]
           ) -> dict[str, Callable[[np.ndarray], Any]]:
    """Each layer's single search of one of ``rows``, ``(1, dim)`` float32 arrays."""
    from embedops.store import quantization
    from embedops.store.catalog import lookup

    row = lookup(store.conn, "b")
    indexes = store._indexes
    index = indexes.live[row.cid].index
    graph, searcher, lock = only_graph(index), store._search, store._index_lock
    work = busy_loop(python_us)
    # each row's scale as ``store.search`` passes it (``rows`` stay alive: ids are unique)
    scales = {id(q): quantization.one_query(q, row.dim, row.metric)[1] for q in rows}

    def graph_python(q: np.ndarray) -> Any:
        found = graph.search_row(q, K, EF)
        work()
        return found

    def plan(q: np.ndarray) -> Any:
        with lock.shared():
            return searcher.search_one(row, indexes.ready(row, True), q, scales[id(q)], K, EF)

    view, depth, cached = kept_way(store, rows, EF)

    def hits(q: np.ndarray) -> Any:
        return view.hits(q, K, depth, cached, scales[id(q)])

    return {"graph": lambda q: graph.search_row(q, K, EF), "graph+python": graph_python,
            "hits": hits, "index": lambda q: index.search_one(q, K, EF), "plan": plan,
            "store": lambda q: store.search("b", q, K, ef=EF)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    vector_arguments(parser, queries=500)
    parser.add_argument("--passes", type=int, default=10, help="times each query repeats")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python-us", type=float, default=10.0)
    parser.add_argument("--segment-size", type=int,
                        help="the collection's segment_size (0: one graph; default: the "
                             "store's default layout)")
    args = parser.parse_args()
    if bool(args.npy) != bool(args.queries_npy):
        parser.error("--npy and --queries-npy go together")
    from embedops.store import open_store

    if args.npy:
        base = np.load(args.npy).astype(np.float32)
        held_out = np.load(args.queries_npy).astype(np.float32)[:args.queries]
    else:
        base, held_out = make_data(args.n, args.queries, 384)
    held_out /= np.linalg.norm(held_out, axis=1, keepdims=True)
    rows = [q[None, :].copy() for q in np.tile(held_out, (max(1, args.passes), 1))]
    report: dict[str, Any] = {"n": len(base), "dim": base.shape[1], "k": K, "ef": EF,
                              "searches": len(rows), "runs": args.runs,
                              "segment_size": args.segment_size, "queries": len(held_out),
                              "passes": args.passes, "python_us": args.python_us,
                              "load_at_start": round(os.getloadavg()[0], 2), "layers": {}}
    with tempfile.TemporaryDirectory() as folder, open_store(Path(folder) / "s") as store:
        params = {"exact_threshold": 0}
        if args.segment_size is not None:
            params["segment_size"] = args.segment_size
        filled_collection(store, base, params)
        store.search("b", rows[0], K, ef=EF)  # (loads the index)
        searches = layers(store, args.python_us, rows)
        for search in searches.values():  # warm-up
            for q in rows[:500]:
                search(q)
        timed: dict[str, list[tuple[float, float]]] = {name: [] for name in searches}
        for run in range(args.runs):
            for name, search in searches.items():
                if run % 2:
                    one = timed_queries(search, rows)[1]  # type: ignore[arg-type]
                two = threaded_qps(search, rows, threads=2)  # type: ignore[arg-type]
                if not run % 2:
                    one = timed_queries(search, rows)[1]  # type: ignore[arg-type]
                timed[name].append((one, two))
    for name, runs in timed.items():
        one_qps = summary([one for one, _ in runs], 0)
        assert one_qps is not None
        report["layers"][name] = {
            "one_thread_qps": one_qps, "us_per_search": round(1e6 / one_qps["median"], 1),
            "two_threads_over_one": summary([two / one for one, two in runs], 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
