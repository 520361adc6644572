"""A scan of a collection in pages, by a filter every point matches and by none: walking
the table's primary key (what ``scan`` chooses for a collection that fills the table)
against SQLite's own plan for the same statement, an index on ``cid`` with the rest of
the collection sorted for every page (how a filtered scan ran before).

Writes ``--n`` synthetic points (``--dim`` dimensions, a small payload each) into one
collection of an embedded store, then times full scans of it, ``--page`` points a page,
alternating the two plans, ``--runs`` times each (``EmbeddedStore._scan_page`` with the
plan fixed). Prints JSON: per filter and plan the seconds of a full scan (median, min,
max) and, run by run, SQLite's plan ÷ the walk.

    .venv/bin/python bench/scan_pages.py --n 200000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store import open_store
from run_stats import summary  # bench/ is the script's directory

FILTERS: dict[str, Any] = {"no_filter": None,
                           "field_missing": {"field": "lang", "exists": False}}


def full_scan(store: Any, flt: Any, page: int, walk: bool) -> tuple[float, int]:
    started, last, count = time.perf_counter(), -1, 0
    while True:
        points, last, _, _ = store._scan_page("c", last, page, flt, False, walk)
        if not points:
            return time.perf_counter() - started, count
        count += len(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--page", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    seconds: dict[str, dict[str, list[float]]] = {
        name: {"walk": [], "sqlite_plan": []} for name in FILTERS}
    with tempfile.TemporaryDirectory() as folder, open_store(Path(folder) / "s") as store:
        store.create_collection("c", args.dim, fingerprint="fp")
        for at in range(0, args.n, 10_000):
            count = min(10_000, args.n - at)
            store.upsert("c", [f"p{i}" for i in range(at, at + count)],
                         rng.standard_normal((count, args.dim)).astype("float32"),
                         [{"doc": i, "title": f"passage {i}"}
                          for i in range(at, at + count)], fingerprint="fp")
        for _ in range(args.runs):
            for name, flt in FILTERS.items():
                for plan, walk in (("sqlite_plan", False), ("walk", True)):
                    took, count = full_scan(store, flt, args.page, walk)
                    assert count == args.n, (name, plan, count)
                    seconds[name][plan].append(took)
    out: dict[str, Any] = {"points": args.n, "dim": args.dim, "page": args.page,
                           "runs": args.runs}
    for name, plans in seconds.items():
        out[name] = {plan: summary(values, 3) for plan, values in plans.items()}
        out[name]["sqlite_plan_over_walk"] = summary(
            [old / new for old, new in zip(plans["sqlite_plan"], plans["walk"],
                                           strict=True)], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
