"""A store collection of bounded segments (``index_params.segment_size``) against one of
one graph, built through the store from the same vectors in the same process.

For each layout: a collection created (``exact_threshold`` 0), the ``--n`` clustered
vectors of ``bench/store_footprint.py`` upserted in batches of 10,000 with
``store_footprint``'s ids and payloads, each upsert timed (the writes wait for the
merger once enough points are pending, so the batch times follow the graph's insert
rate), the final wait for the merger counted in the last batch. Reported: the build
rate overall, over the first and the last tenth of the batches, and last ÷ first (the
store issue's goal: at least 0.6 at 1M). The pending segment takes the first ~20,000
points without waiting and the last tenth waits for it to drain, which lowers that
ratio for any layout; so the rate at which points enter the graphs is reported too
(``merged_*``): after each upsert the points merged so far (``stats``: index points
less pending ones), and, per tenth of the points, the time between the moments the
merged count reached its start and its end (interpolated between upserts). Then single
searches through the store (``search_one``, k 10, one thread, a warm-up pass first) at
the collection's default depth and at each ``--ef`` (over segments, the depth of the
whole search, which the segments share by size): searches/s and recall@10 against
exact search, and at each ``--target`` recall the best searches/s among the depths that
reach it; and at the default depth, searches with a payload filter matching 1% and 10%
of the points (searches/s, recall@10 against exact search over the matches). The
baseline is the one-graph collection (``segment_size`` 0) in the same invocation; the
layouts alternate which goes first (``--first``). ``--order cluster`` writes the points
in order of their cluster instead of at random (a corpus written source by source: a
query's neighbours then sit mostly in one segment). Prints JSON.

    .venv/bin/python bench/store_segments.py --n 1000000 --segment-size 200000
    .venv/bin/python bench/store_segments.py --n 1000000 --segment-size 200000 --dtype int8
    .venv/bin/python bench/store_segments.py --n 1000000 --order cluster
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store import open_store
from store_footprint import BATCH, batch_points, clustered_labelled  # (bench/: the script's)

K = 10


def exact_truth(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query's ``K`` nearest rows by inner product (unit vectors), in blocks."""
    best = np.zeros((len(queries), 0), dtype=np.int64)
    best_scores = np.zeros((len(queries), 0), dtype=np.float32)
    for lo in range(0, len(points), 100_000):
        sims = queries @ points[lo:lo + 100_000].T
        keys = np.concatenate([best, np.broadcast_to(
            np.arange(lo, lo + sims.shape[1]), sims.shape)], axis=1)
        sims = np.concatenate([best_scores, sims], axis=1)
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        best = np.take_along_axis(keys, top, axis=1)
        best_scores = np.take_along_axis(sims, top, axis=1)
    return best


def _row(point_id: str) -> int:
    """The row of ``store_footprint.batch_points``' id ``doc-<d>#<c>``: 4 d + c."""
    doc, chunk = point_id[4:].split("#")
    return 4 * int(doc) + int(chunk)


def build(path: Path, points: np.ndarray, params: dict[str, int], dtype: str = "float32"
          ) -> tuple[Any, dict[str, Any]]:
    """The store at ``path`` with ``points`` written as described above (a collection of
    ``dtype``), and the build's figures."""
    store = open_store(path)
    store.create_collection("c", points.shape[1], fingerprint="bench", dtype=dtype,
                            index_params={"exact_threshold": 0, **params})
    seconds: list[float] = []
    merged: list[tuple[float, int]] = [(0.0, 0)]  # (seconds since the start, points merged)
    started = time.perf_counter()
    for start in range(0, len(points), BATCH):
        end = min(start + BATCH, len(points))
        ids, payloads = batch_points(start, end)
        began = time.perf_counter()
        store.upsert("c", ids, points[start:end], payloads, fingerprint="bench")
        seconds.append(time.perf_counter() - began)
        now = store.stats("c")
        merged.append((time.perf_counter() - started,
                       now["index_points"] - now["index_pending"]))
    began = time.perf_counter()
    store.wait_merged(timeout=24 * 3600)
    seconds[-1] += time.perf_counter() - began
    merged.append((time.perf_counter() - started, len(points)))
    tenth = max(1, len(seconds) // 10)
    first = tenth * BATCH / sum(seconds[:tenth])
    last = tenth * BATCH / sum(seconds[-tenth:])
    stats = store.stats("c")
    return store, {**merged_tenths(merged, len(points)),
                   "build_seconds": round(sum(seconds), 1),
                   "build_points_per_s": round(len(seconds) * BATCH / sum(seconds)),
                   "first_tenth_points_per_s": round(first),
                   "last_tenth_points_per_s": round(last),
                   "last_over_first": round(last / first, 3),
                   "index_bytes": stats["index_bytes"],
                   "search_depth": stats["search_depth"]}


def merged_tenths(merged: list[tuple[float, int]], n: int) -> dict[str, float]:
    """Points merged per second over the first and the last tenth of ``n``, from
    ``(seconds, points merged)`` samples (the moment a count was reached interpolated
    between the samples around it)."""
    at, count = np.asarray([t for t, _ in merged]), np.asarray([c for _, c in merged])
    count = np.maximum.accumulate(count)  # (a sample never goes back)

    def moment(points: float) -> float:
        """When the merged count first reached ``points``."""
        i = int(np.searchsorted(count, points, side="left"))
        if i == 0:
            return float(at[0])
        share = (points - count[i - 1]) / max(count[i] - count[i - 1], 1)
        return float(at[i - 1] + share * (at[i] - at[i - 1]))

    first = (n / 10) / moment(n / 10)
    last = (n / 10) / (moment(n) - moment(0.9 * n))
    return {"merged_first_tenth_points_per_s": round(first),
            "merged_last_tenth_points_per_s": round(last),
            "merged_last_over_first": round(last / first, 3)}


def timed(store: Any, queries: np.ndarray, truth: np.ndarray, passes: int = 1,
          **options: Any) -> dict[str, Any]:
    """Searches/s and recall@10 of single searches (``search_one`` with ``options``),
    after a warm-up pass; with ``passes`` > 1, the median of that many timed passes and
    each pass's rate (a filter's plan may change within the first ones: its matches
    are read and kept once its oversampled searches have cost enough, ``filter_costs``)."""
    for query in queries:
        store.search_one("c", query, k=K, **options)
    rates = []
    for _ in range(passes):
        began = time.perf_counter()
        found = [store.search_one("c", query, k=K, **options) for query in queries]
        rates.append(len(queries) / (time.perf_counter() - began))
    hit = [len({_row(h.id) for h in hits} & set(t.tolist())) / K
           for hits, t in zip(found, truth, strict=True)]
    out = {"qps": round(float(np.median(rates)), 1), "recall": round(float(np.mean(hit)), 4)}
    return out if passes == 1 else {**out, "passes_qps": [round(r, 1) for r in rates]}


def searches(store: Any, queries: np.ndarray, truth: np.ndarray, ef: int | None
             ) -> dict[str, Any]:
    """Searches/s and recall@10 of single searches at ``ef`` (None: the default)."""
    return {"ef": ef, **timed(store, queries, truth, ef=ef)}


FILTERS = {"1%": ({"field": "bucket", "eq": 3}, lambda rows: rows % 100 == 3),
           "10%": ({"field": "bucket", "lt": 10}, lambda rows: rows % 100 < 10)}


def filtered(store: Any, points: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """Single searches with a payload filter matching 1% and 10% of the points
    (``batch_points``' ``bucket``: row % 100) at the default depth, a warm-up pass
    first: searches/s (the median of three passes) and recall@10 (the last pass's)
    against exact search over the matching rows. The first 100 queries."""
    out: dict[str, Any] = {}
    queries = queries[:100]
    for name, (spec, matching) in FILTERS.items():
        rows = np.flatnonzero(matching(np.arange(len(points))))
        truth = rows[exact_truth(points[rows], queries)]
        out[name] = timed(store, queries, truth, passes=3, filter=spec)
    return out


def best_at(results: list[dict[str, Any]], target: float) -> float | None:
    reaching = [r["qps"] for r in results if r["recall"] >= target]
    return max(reaching) if reaching else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--segment-size", type=int, default=200_000)
    parser.add_argument("--dtype", choices=("float32", "float16", "int8"), default="float32")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ef", default="16,24,32,48,64,96,128,202,256,384,512")
    parser.add_argument("--target", default="0.9,0.95,0.955")
    parser.add_argument("--first", choices=("one", "segments"), default="one")
    parser.add_argument("--order", choices=("random", "cluster"), default="random",
                        help="cluster: the points written in order of their cluster, as a "
                             "corpus written source by source is (each segment then holds "
                             "~40 of the 200 clusters, a query's neighbours mostly one)")
    args = parser.parse_args()
    points, queries, labels = clustered_labelled(args.n, args.dim, args.queries)
    if args.order == "cluster":
        points = np.ascontiguousarray(points[np.argsort(labels, kind="stable")])
    truth = exact_truth(points, queries)
    layouts = {"one": {"segment_size": 0}, "segments": {"segment_size": args.segment_size}}
    order = ["one", "segments"] if args.first == "one" else ["segments", "one"]
    efs: list[int | None] = [None, *(int(ef) for ef in args.ef.split(","))]
    report: dict[str, Any] = {"n": args.n, "dim": args.dim, "dtype": args.dtype,
                              "segment_size": args.segment_size, "first": args.first,
                              "order": args.order}
    for name in order:
        with tempfile.TemporaryDirectory() as folder:
            store, built = build(Path(folder) / "s", points, layouts[name], args.dtype)
            built["searches"] = [searches(store, queries, truth, ef) for ef in efs]
            built["filtered"] = filtered(store, points, queries)
            store.close()
        report[name] = built
    one, split = report["one"], report["segments"]
    report["build_rate_ratio"] = round(split["build_points_per_s"]
                                       / one["build_points_per_s"], 3)
    report["at_target_recall"] = {}
    for target in (float(t) for t in args.target.split(",")):
        a, b = best_at(one["searches"], target), best_at(split["searches"], target)
        report["at_target_recall"][str(target)] = {
            "one_qps": a, "segments_qps": b,
            "ratio": round(b / a, 3) if a and b else None}
    report["machine"] = f"{platform.machine()}, {platform.python_implementation()} " \
                        f"{platform.python_version()}"
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
