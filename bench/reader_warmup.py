"""A read-only handle's first search on a collection that was never checkpointed.

The writer loads ``--n`` 384-d vectors and keeps its handle open (no checkpoint), as
happens when a reader follows an alias to a freshly written collection. Side by side in
each run, on the same store: a reader that replays every point into a graph before its
first search (the inline catch-up, forced by raising ``WARM_MIN``: the baseline) and a
reader that loads the graph in the background and answers exactly meanwhile. Prints
JSON: first-search seconds, searches answered while the graph loads (latency median),
and the seconds until the graph took over; median and range over ``--runs``.

    .venv/bin/python bench/reader_warmup.py --n 20000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from ann import make_data  # bench/ is the script's directory
from embedops.store import embedded
from embedops.store.embedded import EmbeddedStore
from remote import summarise


def first_search(path: str, queries: np.ndarray, background: bool) -> dict[str, float]:
    saved = embedded.WARM_MIN
    if not background:
        embedded.WARM_MIN = 1 << 62  # every catch-up inline, before the search
    reader = EmbeddedStore(path, read_only=True)
    try:
        start = time.perf_counter()
        reader.search_one("c", queries[0], k=10)
        out = {"first_search_s": time.perf_counter() - start}
        if background:
            latencies = []
            i = 1
            while any(t.is_alive() for t in reader._warming.values()):
                t0 = time.perf_counter()
                reader.search_one("c", queries[i % len(queries)], k=10)
                latencies.append(time.perf_counter() - t0)
                i += 1
            out["graph_ready_s"] = time.perf_counter() - start
            out["searches_while_loading"] = len(latencies)
            out["latency_while_loading_ms"] = 1000 * statistics.median(latencies or [0.0])
        start = time.perf_counter()
        reader.search_one("c", queries[-1], k=10)
        out["next_search_ms"] = 1000 * (time.perf_counter() - start)
        return out
    finally:
        reader.close()
        embedded.WARM_MIN = saved


def one_run(n: int) -> dict[str, Any]:
    base, queries = make_data(n, 100, 384, seed=n)
    with tempfile.TemporaryDirectory(prefix="embedops-warm-") as tmp:
        writer = EmbeddedStore(tmp)
        writer.create_collection("c", 384, fingerprint="fp")
        for lo in range(0, n, 1000):
            writer.upsert("c", [str(i) for i in range(lo, min(n, lo + 1000))],
                          base[lo:lo + 1000], None, fingerprint="fp")
        writer.wait_merged(600)
        try:
            return {"inline": first_search(tmp, queries, background=False),
                    "background": first_search(tmp, queries, background=True)}
        finally:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.n) for _ in range(args.runs)]
    report = {"n": args.n, "runs": args.runs, **summarise(runs)}
    report["first_search_ratio"] = statistics.median(
        r["inline"]["first_search_s"] / r["background"]["first_search_s"] for r in runs)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
