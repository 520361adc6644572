"""What bounded graph segments would buy and cost against one HNSW graph of the whole collection.

The store's insert-rate goal asks that the last tenth of a 1M build go in at least 0.6
times as fast as the first. One graph's rate falls with its size for two reasons this
script measures apart: an insert's search (ef_construction) computes more distances in
a larger graph, and each distance costs more once the graph has outgrown the CPU
caches. Bounding the
graph (sealed segments of ``n / segments`` points, the layout of Milvus and Qdrant)
keeps every insert in a small graph, and makes every search visit every segment.

Both layouts are built from the same ``bench/store_footprint.py`` clustered vectors (unit
rows, inner product), with raw faiss ``IndexHNSWFlat`` (M = 16, ef_construction = 128,
the store's defaults), one thread, in batches of 10,000 timed one by one; the segmented
layout fills one graph after another. Then single queries, one thread, at each ``--ef``:
the one graph searched at ef, or every segment at ef and the lists merged by score, as a
store would; through the store's compiled single-query search
(``store/graph_search.py``, one call a graph, the lists merged in Python), or with
``--search faiss`` through faiss's own (one call a graph from Python, merged with
numpy). Per layout: insert rate overall and over the first and the last tenth, last ÷
first; per ef: searches/s and recall@10 against exact search; and, at each ``--target``
recall, the best searches/s among the depths that reach it (the segmented ÷ single
ratio is the search cost of meeting the insert goal that way). For the one graph, also
the distances an insert-like search (ef = ef_construction) computes at each tenth of
the build and the time per distance, from faiss's ``hnsw_stats``. Prints
JSON; ``--runs`` repeats everything and summarises each figure as median and range.

    .venv/bin/python bench/segment_tradeoff.py --n 1000000 --segments 5 --runs 3
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import faiss
import numpy as np

from ann import recall, timed_queries  # bench/ is the script's directory
from embedops.store import graph_search
from run_stats import summary
from store_footprint import clustered

DIM, M, EF_CONSTRUCTION = 384, 16, 128
BATCH, K = 10_000, 10
PROBES = 300  # queries searched at ef_construction after each tenth of the one graph


def _graph() -> Any:
    graph = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    return graph


def _tenths(seconds: list[float]) -> dict[str, float]:
    tenth = max(1, len(seconds) // 10)
    first = tenth * BATCH / sum(seconds[:tenth])
    last = tenth * BATCH / sum(seconds[-tenth:])
    return {"rate": len(seconds) * BATCH / sum(seconds), "first_tenth": first,
            "last_tenth": last, "last_over_first": last / first}


def _probe(graph: Any, queries: np.ndarray) -> dict[str, float]:
    """Distances an insert-like search computes now, and the time per distance."""
    graph.hnsw.efSearch = EF_CONSTRUCTION
    stats = faiss.cvar.hnsw_stats
    stats.reset()
    began = time.perf_counter()
    graph.search(queries[:PROBES], K)
    spent = time.perf_counter() - began
    return {"distances": stats.ndis / PROBES, "ns_per_distance": spent * 1e9 / stats.ndis}


def build_one(points: np.ndarray, queries: np.ndarray) -> tuple[Any, dict[str, Any]]:
    graph, seconds, probes = _graph(), [], []
    tenth = len(points) // 10
    for start in range(0, len(points), BATCH):
        began = time.perf_counter()
        graph.add(points[start:start + BATCH])
        seconds.append(time.perf_counter() - began)
        if (start + BATCH) % tenth == 0:
            probes.append({"points": start + BATCH, **_probe(graph, queries)})
    first, last = probes[0], probes[-1]
    growth = {"distances_last_over_first": last["distances"] / first["distances"],
              "ns_per_distance_last_over_first":
                  last["ns_per_distance"] / first["ns_per_distance"]}
    return graph, {**_tenths(seconds), **growth, "probes": probes}


def build_segments(points: np.ndarray, segments: int
                   ) -> tuple[list[Any], np.ndarray, dict[str, Any]]:
    """``segments`` graphs filled one after another, each of ``n / segments`` points
    rounded up to whole batches; returns them with the position of each one's first
    point (the offset of its ids)."""
    size = -(-len(points) // segments)
    size = -(-size // BATCH) * BATCH
    graphs, offsets, seconds = [], [], []
    for start in range(0, len(points), BATCH):
        if start % size == 0:
            graphs.append(_graph())
            offsets.append(start)
        began = time.perf_counter()
        graphs[-1].add(points[start:start + BATCH])
        seconds.append(time.perf_counter() - began)
    return graphs, np.asarray(offsets), {**_tenths(seconds), "segment_size": size}


def _search_segments(graphs: list[Any], query: np.ndarray, offsets: np.ndarray
                     ) -> np.ndarray:
    """faiss's search of every segment, the lists merged by score."""
    scores, ids = [], []
    for graph, offset in zip(graphs, offsets, strict=True):
        s, i = graph.search(query, K)
        scores.append(s[0])
        ids.append(np.where(i[0] >= 0, i[0] + offset, -1))
    scores_all, ids_all = np.concatenate(scores), np.concatenate(ids)
    best = np.argpartition(-scores_all, K - 1)[:K]
    return ids_all[best]


class CompiledViews:
    """The store's compiled single-query search (``store/graph_search.py``) over each
    graph of a layout, its nodes keyed by their positions in the whole collection."""

    def __init__(self, graphs: list[Any], offsets: np.ndarray) -> None:
        self.keep, self.views = [], []
        for graph, offset in zip(graphs, offsets, strict=True):
            nodes = int(graph.ntotal)
            labels = np.append(np.arange(offset, offset + nodes, dtype=np.int64), -1)
            alive = np.packbits(np.ones(nodes, dtype=bool), bitorder="little")
            alive = np.append(alive, np.zeros(1, dtype=np.uint8))
            self.keep.append((labels, alive))
            self.views.append(graph_search.view_of(graph, labels, alive))

    def search(self, row: np.ndarray, ef: int) -> list[int]:
        """The best ``K`` keys over every graph, searched at ``ef``."""
        if len(self.views) == 1:
            return self.views[0].search(row, K, ef)[0]
        found: list[tuple[float, int]] = []
        for view in self.views:
            keys, scores = view.search(row, K, ef)
            found += zip(scores, keys, strict=True)
        return [key for _, key in heapq.nlargest(K, found)]


def searches(layout: list[Any], queries: np.ndarray, truth: np.ndarray, ef: int,
             offsets: np.ndarray | None, compiled: CompiledViews | None
             ) -> dict[str, float]:
    """Searches/s over ``queries``, one at a time, and recall@10 over the first
    ``len(truth)`` of them."""
    search: Callable[[np.ndarray], Any]
    if compiled is not None:
        rows = [np.ascontiguousarray(q, dtype=np.float32) for q in queries]
        search = partial(compiled.search, ef=ef)
    else:
        for graph in layout:
            graph.hnsw.efSearch = ef
        rows = [q[None, :] for q in queries]
        search = (partial(_search_one, layout[0]) if offsets is None
                  else partial(_search_segments, layout, offsets=offsets))
    found, qps = timed_queries(search, rows)
    return {"ef": ef, "qps": qps, "recall": recall(found[:len(truth)], truth)}


def _search_one(graph: Any, query: np.ndarray) -> np.ndarray:
    return graph.search(query, K)[1][0]


def best_at(results: list[dict[str, float]], target: float) -> float | None:
    reaching = [r["qps"] for r in results if r["recall"] >= target]
    return max(reaching) if reaching else None


def one_run(n: int, segments: int, efs: list[int], targets: list[float],
            queries_n: int, compiled: bool) -> dict[str, Any]:
    points, queries = clustered(n, DIM, queries_n)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(points)
    truth = exact.search(queries[:200], K)[1]
    del exact
    one, one_build = build_one(points, queries)
    parts, offsets, parts_build = build_segments(points, segments)
    views = (CompiledViews([one], np.zeros(1, dtype=np.int64)), CompiledViews(parts, offsets)
             ) if compiled else (None, None)
    single = [searches([one], queries, truth, ef, None, views[0]) for ef in efs]
    split = [searches(parts, queries, truth, ef, offsets, views[1]) for ef in efs]
    at_target = {}
    for target in targets:
        a, b = best_at(single, target), best_at(split, target)
        at_target[str(target)] = {"single_qps": a, "segmented_qps": b,
                                  "segmented_over_single": b / a if a and b else None}
    return {"single": {"build": one_build, "search": single},
            "segmented": {"build": parts_build, "search": split},
            "at_target_recall": at_target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--ef", default="16,24,32,48,64,96,128,192,256")
    parser.add_argument("--target", default="0.9,0.95,0.955")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--search", choices=("compiled", "faiss"), default="compiled",
                        help="single queries through the store's compiled search (one "
                        "call a graph, the lists merged in Python) or faiss's own")
    args = parser.parse_args()
    compiled = args.search == "compiled"
    if compiled and not graph_search.compiled():
        parser.error("the compiled search is not built here: --search faiss")
    faiss.omp_set_num_threads(1)
    efs = [int(e) for e in args.ef.split(",")]
    targets = [float(t) for t in args.target.split(",")]
    runs = [one_run(args.n, args.segments, efs, targets, args.queries, compiled)
            for _ in range(args.runs)]
    for number, run in enumerate(runs):
        print(json.dumps({"run": number, **run}), flush=True)

    def figure(path: list[str]) -> dict[str, float] | None:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            if value is not None:
                values.append(float(value))
        return summary(values, 3)

    result: dict[str, Any] = {"n": args.n, "segments": args.segments, "runs": args.runs,
                              "search": args.search}
    for layout in ("single", "segmented"):
        result[layout] = {key: figure([layout, "build", key])
                          for key in ("rate", "first_tenth", "last_tenth", "last_over_first")}
    for key in ("distances_last_over_first", "ns_per_distance_last_over_first"):
        result["single"][key] = figure(["single", "build", key])
    result["at_target_recall"] = {
        str(t): {key: figure(["at_target_recall", str(t), key])
                 for key in ("single_qps", "segmented_qps", "segmented_over_single")}
        for t in targets}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
