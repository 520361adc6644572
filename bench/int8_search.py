"""Single searches of an int8 collection through the whole store: rate and recall.

Builds an int8 store of ``--n`` clustered × 384 points (``bench/ann.py``'s mixture) with a
small payload each, then times ``store.search`` of one query at a time at the default
depth (each search ranks ``oversample * k`` graph candidates again by their stored float
vectors, read from SQLite), ``--passes`` passes over 1,000 held-out queries after a warm
pass, and measures recall@10 against exact float search. To compare two commits, run it
with each commit's ``src`` first on ``PYTHONPATH``, alternating. Prints JSON.

    PYTHONPATH=<worktree>/src .venv/bin/python bench/int8_search.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import embedops
from ann import make_data  # bench/ is the script's directory
from embedops.store import open_store

K = 10


def _commit() -> str:
    root = Path(embedops.__file__).resolve().parents[2]
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    base, queries = make_data(args.n, 1000, 384)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "s")
        store.create_collection("c", 384, fingerprint="bench", dtype="int8",
                                index_params={"exact_threshold": 0})
        for lo in range(0, args.n, 10_000):
            hi = min(lo + 10_000, args.n)
            store.upsert("c", [str(i) for i in range(lo, hi)], base[lo:hi],
                         [{"n": i, "text": "passage " * 20} for i in range(lo, hi)],
                         fingerprint="bench")
        store.wait_merged(3600)
        found = [store.search("c", q, K)[0] for q in queries]  # (warm: the hit cache fills)
        truth = np.argsort(-(queries @ base.T), axis=1)[:, :K]
        recall = np.mean([len({int(h.id) for h in hits} & set(t.tolist())) / K
                          for hits, t in zip(found, truth, strict=True)])
        rates = []
        for _ in range(args.passes):
            began = time.perf_counter()
            for q in queries:
                store.search("c", q, K)
            rates.append(len(queries) / (time.perf_counter() - began))
        store.close()
    print(json.dumps({"commit": _commit(), "n": args.n, "load_at_start": os.getloadavg()[0],
                      "searches_per_s": round(statistics.median(rates)),
                      "passes": [round(r) for r in rates], "recall_at_10": round(recall, 4)}))


if __name__ == "__main__":
    main()
