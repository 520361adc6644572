"""CPU instructions a single search takes, layer by layer, beside raw faiss's own search
of the same graph, counted by callgrind: a figure the load on this noisy machine does not
move (the same code, data and queries count the same to within ~0.2%), for changes too
small to time here. Instructions are not time: a graph search stalls on memory and the
Python around it on CPU caches the graph search has evicted, which callgrind does not
count (time the store with ``bench/graph_library.py``).

Builds a store of ``--npy`` vectors (or ``--n`` clustered ones, ``bench/ann.py``'s
mixture), then for each layer runs a child process under ``valgrind --tool=callgrind``
twice on a fresh copy of the store, after the same warm-up (every layer, 50 queries):
once searching ``--queries`` queries and once searching none. The difference in the
main thread's instructions ÷ the queries is the layer's count per search. Layers:

* ``raw``: faiss's own Python wrapper (``index.search(q, k, params=...)``) on the
  store's graph — the baseline;
* ``graph``: ``HnswGraph.search`` (the store's call into faiss, its labels);
* ``index_one``: ``HnswIndex.search_one`` (pending points, shared nodes, padding);
* ``plan``: ``IndexManager.ready`` and ``Searcher.search_one`` under the index lock
  (the plan and the hits);
* ``store``: ``store.search``, the whole call a user makes.

Prints JSON: per layer the instructions per search and ÷ ``raw``'s. Needs Debian's
``valgrind``; exits with status 2 when it is missing. Compare two commits by running the
script with each on ``PYTHONPATH``.

    .venv/bin/python bench/search_instructions.py --npy vectors.npy --queries-npy queries.npy
    .venv/bin/python bench/search_instructions.py --n 20000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

K, EF, WARM = 10, 64, 50
LAYERS = ("raw", "graph", "index_one", "plan", "store")


def child(store_path: str, queries_path: str, layer: str, n: int) -> None:
    """Search ``n`` queries through ``layer`` after the warm-up (runs under valgrind)."""
    import faiss

    from ann import only_graph  # (bench/: the script's directory)
    from embedops.store import open_store, quantization
    from embedops.store.catalog import lookup

    queries = [q[None, :].copy() for q in np.load(queries_path)]
    store = open_store(store_path)
    row = lookup(store.conn, "b")
    store.search("b", queries[0], K, ef=EF)  # (loads the index)
    searcher, indexes = store._search, store._indexes
    index = indexes.live[row.cid].index
    graph = only_graph(index)  # (the raw and graph layers time one graph)
    params = faiss.SearchParametersHNSW()
    params.efSearch = EF

    scales = {id(q): quantization.one_query(q, row.dim, row.metric)[1] for q in queries}

    def plan(q: np.ndarray) -> Any:  # (the query's scale as ``store.search`` passes it)
        with store._index_lock.shared():
            return searcher.search_one(row, indexes.ready(row, True), q, scales[id(q)], K, EF)

    searches = {"raw": lambda q: graph.graph.search(q, K, params=params),
                "graph": lambda q: graph.search(q, K, EF),
                "index_one": lambda q: index.search_one(q, K, EF), "plan": plan,
                "store": lambda q: store.search("b", q, K, ef=EF)}
    for search in searches.values():
        for q in queries[:WARM]:
            search(q)
    search = searches[layer]
    for i in range(n):
        search(queries[i % WARM])
    store.close()


def counted(store: Path, queries: Path, layer: str, n: int) -> int:
    """The main thread's instructions in a child searching ``n`` queries of ``layer``."""
    with tempfile.TemporaryDirectory() as folder:
        copy, out = Path(folder) / "s", Path(folder) / "callgrind.out"
        shutil.copytree(store, copy)
        done = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                               f"--callgrind-out-file={out}", sys.executable, __file__,
                               "--child", str(copy), str(queries), layer, str(n)],
                              capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode:
            raise RuntimeError(f"the {layer} child failed:\n{done.stderr[-3000:]}")
        (main_thread,) = Path(folder).glob("callgrind.out-01")
        for line in main_thread.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--npy", help="base vectors (.npy, float32 N x D) instead of synthetic")
    parser.add_argument("--queries-npy", help="query vectors for --npy")
    parser.add_argument("--queries", type=int, default=1000, help="searches counted per layer")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()
    if bool(args.npy) != bool(args.queries_npy):
        parser.error("--npy and --queries-npy go together")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        sys.exit(2)
    from embedops.store import open_store

    if args.npy:
        base = np.load(args.npy).astype(np.float32)
        held_out = np.load(args.queries_npy).astype(np.float32)
        if len(held_out) < WARM:
            parser.error(f"--queries-npy holds fewer than {WARM} queries")
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from ann import make_data

        base, held_out = make_data(args.n, 1000, 384)
    report: dict[str, Any] = {"n": len(base), "dim": base.shape[1], "k": K, "ef": EF,
                              "queries": args.queries, "layers": {}}
    with tempfile.TemporaryDirectory() as folder:
        path, queries = Path(folder) / "s", Path(folder) / "queries.npy"
        np.save(queries, held_out[:WARM])
        with open_store(path) as store:
            store.create_collection("b", base.shape[1], fingerprint="bench",
                                    index_params={"exact_threshold": 0})
            for lo in range(0, len(base), 10_000):
                ids = [str(i) for i in range(lo, min(lo + 10_000, len(base)))]
                store.upsert("b", ids, base[lo:lo + 10_000], [{"n": int(i)} for i in ids],
                             fingerprint="bench")
            store.wait_merged(3600)
        for layer in args.layers.split(","):
            idle = counted(path, queries, layer, 0)
            busy = counted(path, queries, layer, args.queries)
            report["layers"][layer] = {"instructions_per_search":
                                       round((busy - idle) / args.queries)}
    raw = report["layers"].get("raw", {}).get("instructions_per_search")
    if raw:
        for entry in report["layers"].values():
            entry["over_raw"] = round(entry["instructions_per_search"] / raw, 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
