"""A broad filter's two search plans side by side: recall@10 and QPS per search depth
(``bucket < 10``: 10% of the points).

The store searches a filter too many points match to score them all either oversampled
(the graph searched for ``2 x points / matches`` candidates, checked against the filter
in SQLite) or kept within the matches (the graph search handed a bitmap of their nodes),
choosing by what reading the matches costs (``embedops.store.filter_costs``). Here each
plan is forced in turn, in one process, on a store ``bench/store_footprint.py --keep``
left, at each ``--ef`` ("default": none asked for), over the same queries, with the
store's cache of returned points off. The exact truth is ``bench/store_open.py``'s, read
from the file its ``--truth-file`` wrote for the same points and queries (or computed
and written there). Prints JSON.

    .venv/bin/python bench/store_open.py --path /tmp/s1m --n 1000000 --payload-index \\
        --filtered-only --truth-file /tmp/s1m-truth.json
    .venv/bin/python bench/filter_plans.py --path /tmp/s1m --n 1000000 \\
        --truth-file /tmp/s1m-truth.json --ef default,32,64,128,256,512
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from store_open import base_and_queries, kept_truths, selections  # (bench/: its directory)

K = 10
WHERE = {"field": "bucket", "lt": 10}  # 10% of the points
TRUTH_SLOT = 2  # its truth among store_open.py's (after the unfiltered and the 1% one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--n", type=int, required=True, help="points store_footprint wrote")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200,
                        help="as given to store_open.py (the first 100 are searched)")
    parser.add_argument("--data", choices=("clustered", "clustered-blocks"),
                        default="clustered")
    parser.add_argument("--truth-file", type=Path, required=True)
    parser.add_argument("--ef", default="default,64,128,256,512")
    args = parser.parse_args()

    from embedops.store import open_store
    from embedops.store import search as search_module

    base, asked = base_and_queries(args.n, args.dim, args.data, args.queries)
    # (store_open.py's truths, read from its file when it holds them for these points
    # and queries, else computed and written there)
    truth = kept_truths(args.truth_file, base, args.n, asked,
                        selections(len(asked)))[TRUTH_SLOT]
    queries, where = asked[:100], WHERE
    store = open_store(args.path, hit_cache_bytes=0)
    within = search_module.Searcher._within

    def measured(ef: int | None) -> dict[str, Any]:
        started = time.perf_counter()
        found = [{h.id for h in store.search("c", q, k=K, filter=where, ef=ef)[0]}
                 for q in queries]
        took = time.perf_counter() - started
        return {"qps": round(len(queries) / took), "recall@10": round(float(np.mean(
            [len(f & t) / K for f, t in zip(found, truth, strict=True)])), 4)}

    report: dict[str, Any] = {"n": args.n, "filter": "10%",
                              "load_at_start": os.getloadavg()[0]}
    knobs = [None if knob == "default" else int(knob) for knob in args.ef.split(",")]
    for plan in ("oversampled", "within"):
        # (forced: the within plan never chosen, or its matches read before the first
        # timed search, by a search that counts as the warm-up pass over the queries)
        search_module.Searcher._within = ((lambda *a, **k: None) if plan == "oversampled"
                                          else within)
        if plan == "within":
            store.search("c", queries, k=K, filter=where)  # (a batch: reads them at once)
        measured(None)  # warm-up: the pages this plan touches
        report[plan] = {("default" if ef is None else str(ef)): measured(ef)
                        for ef in knobs}
    report["depth_default"] = store.stats("c").get("search_depth")
    store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
