"""A large store opened cold and searched: open time, recall@10 and QPS per search depth,
filtered search at 1% and 10% selectivity.

Runs on a store ``bench/store_footprint.py --keep DIR --data clustered`` left (its
vectors and queries are generated again, in the same order, for the exact ground
truth). Before each open the operating system's page cache is dropped when the script
may (root: ``/proc/sys/vm/drop_caches``), so "cold" means from disk; ``cold_cache`` in
the output says whether it was. Each open is timed to the first answered search (the
index loads on first use), in a fresh process. Prints JSON.

    .venv/bin/python bench/store_footprint.py --n 1000000 --dtypes int8 --data clustered \
        --keep /tmp/s1m
    .venv/bin/python bench/store_open.py --path /tmp/s1m --n 1000000 [--payload-index]
    .venv/bin/python bench/store_open.py --path /tmp/s1m --n 1000000 --opens 3 \
        --sources /tmp/old/src,/tmp/new/src     # open times of two checkouts, alternating
    .venv/bin/python bench/store_open.py --path /tmp/s1m --n 1000000 --filtered-only \
        --rounds 3 --truth-file /tmp/s1m-truth.json  # filtered searches alone

A filter's first search (its matches counted, the plan chosen) is timed apart from the
passes over the queries that follow it (``first_search_s``). The searches run with the
store's cache of returned points off: each pass repeats the same queries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from run_stats import summary  # bench/ is the script's directory
from store_footprint import ClusteredBlocks, clustered

K = 10
FILTERS = ((0.01, {"field": "bucket", "lt": 1}), (0.10, {"field": "bucket", "lt": 10}))
_OPEN = """
import json, sys, time
import numpy as np
started = time.perf_counter()
from embedops.store import open_store
store = open_store(sys.argv[1], read_only=sys.argv[2] == "ro")
rng = np.random.default_rng(7)
query = rng.standard_normal(int(sys.argv[3])).astype(np.float32)
hits = store.search("c", query, k=10)[0]
first = time.perf_counter() - started
# then searches back to back for a while: (seconds since the start, seconds it took)
after, end = [], time.perf_counter() + float(sys.argv[4])
while time.perf_counter() < end:
    query = rng.standard_normal(int(sys.argv[3])).astype(np.float32)
    at = time.perf_counter()
    store.search("c", query, k=10)
    after.append((at - started, time.perf_counter() - at))
memory = dict(line.split(":") for line in open("/proc/self/status")
              if line.startswith(("RssAnon", "RssFile")))
print(json.dumps({"first": first, "hits": len(hits), "after": after,
                  "mapped": store.stats("c").get("index_mapped", False),
                  **{k: int(v.split()[0]) * 1024 for k, v in memory.items()}}))
"""
SETTLED_RUN = 20  # searches in a row at steady speed that mark the end of the warm-up


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def open_seconds(path: Path, mode: str, dim: int, source: str | None = None,
                 settle: float = 0.0) -> tuple[dict[str, Any], bool]:
    """A fresh process's open, and whether the page cache was dropped before:
    ``first``, seconds from its first import to its first answered search; with
    ``settle`` seconds of searches back to back after it, ``settled``: seconds from the
    first import until searches ran at steady speed (the start of the first
    ``SETTLED_RUN`` searches in a row each under twice the median of the last second),
    ``p50_ms_first_second``, ``p50_ms_steady``; ``rss_anon``/``rss_file`` bytes at the
    end; ``mapped``. ``source``: the ``src`` folder of the library to import (another
    checkout), else this one's."""
    cold = drop_caches()
    env = {**os.environ, "PYTHONPATH": source} if source else None
    out = subprocess.run([sys.executable, "-c", _OPEN, str(path), mode, str(dim), str(settle)],
                         capture_output=True, text=True, check=True, timeout=3600, env=env)
    run = json.loads(out.stdout)
    assert run["hits"] == K, out.stdout
    result = {"first": run["first"], "mapped": run["mapped"], "rss_anon": run["RssAnon"],
              "rss_file": run["RssFile"]}
    after = run["after"]
    if after:
        steady = float(np.median([took for at, took in after if at > after[-1][0] - 1.0]))
        quick = [took < 2 * steady for _, took in after]
        start = next((i for i in range(len(after)) if all(quick[i:i + SETTLED_RUN])),
                     len(after) - 1)
        early = [took for at, took in after if at < run["first"] + 1.0]
        result |= {"settled": after[start][0], "p50_ms_steady": 1e3 * steady,
                   "p50_ms_first_second": 1e3 * float(np.median(early))}
    return result, cold


def truths(base: np.ndarray | ClusteredBlocks, n: int, queries: np.ndarray,
           wanted: list[tuple[int, int | None]]) -> list[list[set[str]]]:
    """Exact top-``K`` ids, one list per ``(count, bucket_below)`` in ``wanted``: for the
    first ``count`` queries, among the points whose ``bucket`` (``i % 100``) is below
    ``bucket_below`` (``None``: all points). One pass over the base vectors, a block of
    rows at a time, so that a base made block by block is generated once and never has to
    be in memory whole."""
    best = [(np.full((count, 0), -np.inf, dtype=np.float32),
             np.zeros((count, 0), dtype=np.int64)) for count, _ in wanted]
    longest = max(count for count, _ in wanted)
    for lo in range(0, n, 100_000):
        hi = min(lo + 100_000, n)
        block_sims = queries[:longest] @ base[lo:hi].T
        buckets = np.arange(lo, hi) % 100
        for slot, (count, bucket_below) in enumerate(wanted):
            sims = block_sims[:count].copy()
            if bucket_below is not None:
                sims[:, buckets >= bucket_below] = -np.inf
            vals = np.concatenate([best[slot][0], sims], axis=1)
            rows = np.concatenate(
                [best[slot][1], np.broadcast_to(np.arange(lo, hi), sims.shape)], axis=1)
            top = np.argpartition(-vals, K, axis=1)[:, :K]
            best[slot] = (np.take_along_axis(vals, top, axis=1),
                          np.take_along_axis(rows, top, axis=1))
    return [[{_id(i) for i in row.tolist()} for row in rows] for _, rows in best]


def base_and_queries(n: int, dim: int, data: str, count: int
                     ) -> tuple[np.ndarray | ClusteredBlocks, np.ndarray]:
    """The base vectors ``store_footprint.py --data`` wrote (generated again) and
    ``count`` held-out queries of their mixture."""
    if data == "clustered-blocks":
        blocks = ClusteredBlocks(n, dim)
        return blocks, blocks.queries(count)
    base, held_out = clustered(n, dim)
    return base, held_out[:count]


def selections(queries: int) -> list[tuple[int, int | None]]:
    """The truths this script computes, as ``truths`` takes them: every query unfiltered,
    the first 100 under each of ``FILTERS``."""
    return [(queries, None)] + [(min(100, queries), where["lt"]) for _, where in FILTERS]


def kept_truths(path: Path | None, base: np.ndarray | ClusteredBlocks, n: int,
                queries: np.ndarray, wanted: list[tuple[int, int | None]]
                ) -> list[list[set[str]]]:
    """``truths``, read from ``path`` when an earlier run wrote it for the same points,
    queries and selections (else computed, and written there when a path is given)."""
    stamp = json.dumps([n, queries.shape, float(queries.sum()), wanted])
    if path is not None and path.exists():
        held = json.loads(path.read_text())
        if held["stamp"] == stamp:
            return [[set(ids) for ids in one] for one in held["truths"]]
    found = truths(base, n, queries, wanted)
    if path is not None:
        path.write_text(json.dumps({"stamp": stamp, "truths": [
            [sorted(ids) for ids in one] for one in found]}))
    return found


def _id(i: int) -> str:
    return f"doc-{i // 4}#{i % 4}"


def compare_opens(path: Path, dim: int, sources: list[str], rounds: int,
                  settle: float) -> None:
    """``--sources``: open times of several checkouts on one store, alternating."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cold = True
    for _ in range(rounds):
        for source in sources:
            for mode in ("ro", "rw"):
                run, was_cold = open_seconds(path, mode, dim, source, settle)
                runs.setdefault((source, mode), []).append(run)
                cold = cold and was_cold
    report: dict[str, Any] = {}
    for (source, mode), these in runs.items():
        report[f"{source} {mode}"] = {
            key: summary([run[key] for run in these], 3) for key in these[0]
            if key != "mapped"} | {"mapped": [run["mapped"] for run in these]}
    print(json.dumps({"load_at_start": os.getloadavg()[0], "cold_cache": cold,
                      "opens": report}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--n", type=int, required=True, help="points store_footprint wrote")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--opens", type=int, default=3)
    parser.add_argument("--ef", default="32,64,128",
                        help="search depths, comma-separated; 'default': none asked for")
    parser.add_argument("--data", choices=("clustered", "clustered-blocks"),
                        default="clustered", help="the --data store_footprint wrote")
    parser.add_argument("--payload-index", action="store_true",
                        help="index the payload field `bucket` before the filtered searches")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="with --sources: seconds of searches after the first one, to "
                        "time the warm-up")
    parser.add_argument("--no-recall", action="store_true",
                        help="QPS only: skip the exact ground truth (its pass regenerates "
                        "every vector: most of the run at 10M)")
    parser.add_argument("--truth-file", type=Path,
                        help="JSON file the exact ground truth is kept in between runs")
    parser.add_argument("--filtered-only", action="store_true",
                        help="skip the opens and the unfiltered searches")
    parser.add_argument("--unfiltered-only", action="store_true",
                        help="skip the payload index and the filtered searches (a depth "
                        "given twice in --ef reports its later pass)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="passes over the queries per filter (median and range)")
    parser.add_argument("--sources", help="comma-separated src folders of checkouts to "
                        "compare: only open times, the checkouts alternating per round")
    args = parser.parse_args()
    if args.sources:
        compare_opens(args.path, args.dim, args.sources.split(","), args.opens, args.settle)
        return
    from embedops.store import open_store

    report: dict[str, Any] = {"n": args.n, "dim": args.dim,
                              "load_at_start": os.getloadavg()[0]}
    for mode in () if args.filtered_only else ("ro", "rw"):
        runs = [open_seconds(args.path, mode, args.dim) for _ in range(args.opens)]
        report[f"open_to_first_search_s_{mode}"] = summary([r["first"] for r, _ in runs], 2)
        report["cold_cache"] = all(c for _, c in runs)
    base, queries = base_and_queries(args.n, args.dim, args.data, args.queries)
    # (the store's cache of returned points off: every pass repeats the same queries,
    # and the passes after the first would read their points from it, not SQLite)
    store = open_store(args.path, hit_cache_bytes=0)
    started = time.perf_counter()
    store.search("c", queries[0], k=K)
    report["first_search_in_process_s"] = round(time.perf_counter() - started, 2)
    report["dtype"] = store.get_collection("c").dtype
    exact, *exact_filtered = ([None] * 3 if args.no_recall else kept_truths(
        args.truth_file, base, args.n, queries, selections(len(queries))))
    for knob in [] if args.filtered_only else args.ef.split(","):
        ef = None if knob == "default" else int(knob)  # default: the store's own depth
        started = time.perf_counter()
        found = [{h.id for h in store.search("c", q, k=K, ef=ef)[0]} for q in queries]
        took = time.perf_counter() - started
        report[f"ef{knob}"] = {"qps": round(len(queries) / took)}
        if exact is not None:
            report[f"ef{knob}"]["recall@10"] = round(float(np.mean(
                [len(f & t) / K for f, t in zip(found, exact, strict=True)])), 4)
        if ef is None:
            report[f"ef{knob}"]["depth"] = store.stats("c").get("search_depth")
    # (filters on a field without a payload index scan every point's JSON)
    if args.payload_index and not args.unfiltered_only:
        started = time.perf_counter()
        store.create_payload_index("c", "bucket")
        report["payload_index_build_s"] = round(time.perf_counter() - started, 1)
    for (share, where), want in ([] if args.unfiltered_only
                                 else zip(FILTERS, exact_filtered, strict=True)):
        key = f"filtered_{int(share * 100)}pct"
        started = time.perf_counter()  # (the filter's first search: its matches counted)
        store.search("c", queries[0], k=K, filter=where)
        report[key] = {"first_search_s": round(time.perf_counter() - started, 3)}
        rates = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            found = [{h.id for h in store.search("c", q, k=K, filter=where)[0]}
                     for q in queries[:100]]
            rates.append(len(found) / (time.perf_counter() - started))
        report[key]["qps"] = (round(rates[0]) if args.rounds == 1
                              else summary(rates, 0) | {"passes": [round(r) for r in rates]})
        if want is not None:
            report[key]["recall@10"] = round(float(np.mean(
                [len(f & t) / K for f, t in zip(found, want, strict=True)])), 4)
    report["index_bytes"] = store.stats("c")["index_bytes"]
    store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
