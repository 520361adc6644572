"""Searches on both cores: single-query QPS of the embedded store from one and from two
threads of one handle, and from one and from two processes, each with a read-only
handle of its own on the same store.

A store of ``--n`` random unit vectors (384-d, HNSW, default search settings) is built
once and closed. Each measurement then runs ``--seconds`` of back-to-back single-query
searches (payloads included, as a caller gets them) after a warm-up that loads the index,
``--runs`` times, alternating the variants. Prints JSON: per variant the QPS as median /
min / max over the runs, and the ratios two ÷ one per run (median / min / max).

    .venv/bin/python bench/search_scaling.py --n 50000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store import open_store
from run_stats import summary  # bench/ is the script's directory

DIM = 384
WARMUP = 200


def _data(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(path: Path, n: int) -> None:
    data = _data(n, 0)
    store = open_store(path)
    store.create_collection("b", DIM, fingerprint="bench", index_params={"exact_threshold": 0})
    for lo in range(0, n, 10_000):
        store.upsert("b", [str(i) for i in range(lo, min(lo + 10_000, n))],
                     data[lo:lo + 10_000], None, fingerprint="bench")
    store.wait_merged(timeout=3600)
    store.checkpoint("b")
    store.close()


def _search_for(store: Any, queries: np.ndarray, seconds: float, offset: int) -> int:
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        store.search("b", queries[(offset + done) % len(queries)], 10)
        done += 1
    return done


def threads_qps(path: Path, threads: int, seconds: float) -> float:
    queries = _data(2000, 1)
    store = open_store(path, read_only=True)
    try:
        for q in queries[:WARMUP]:
            store.search("b", q, 10)
        counts = [0] * threads

        def worker(i: int) -> None:
            counts[i] = _search_for(store, queries, seconds, i * 1000)

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(counts) / (time.perf_counter() - started)
    finally:
        store.close()


def _process_worker(path: str, seconds: float, offset: int, ready: Any, go: Any,
                    results: Any) -> None:
    queries = _data(2000, 1)
    store = open_store(Path(path), read_only=True)
    for q in queries[:WARMUP]:
        store.search("b", q, 10)
    ready.put(True)
    go.wait()
    results.put(_search_for(store, queries, seconds, offset))
    store.close()


def processes_qps(path: Path, processes: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_process_worker,
                           args=(str(path), seconds, i * 1000, ready, go, results))
               for i in range(processes)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=600)
    go.set()
    total = sum(results.get(timeout=600) for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {v: [] for v in
                                    ("threads_1", "threads_2", "processes_1", "processes_2")}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s"
        build(path, args.n)
        for _ in range(args.runs):
            runs["threads_1"].append(threads_qps(path, 1, args.seconds))
            runs["threads_2"].append(threads_qps(path, 2, args.seconds))
            runs["processes_1"].append(processes_qps(path, 1, args.seconds))
            runs["processes_2"].append(processes_qps(path, 2, args.seconds))
    out: dict[str, Any] = {"n": args.n, "dim": DIM, "runs": args.runs,
                           "seconds": args.seconds, "cpus": mp.cpu_count()}
    for variant, values in runs.items():
        out[f"qps_{variant}"] = summary(values, 2)
    for kind in ("threads", "processes"):
        out[f"{kind}_2_over_1"] = summary([two / one for one, two in zip(
            runs[f"{kind}_1"], runs[f"{kind}_2"], strict=True)], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
