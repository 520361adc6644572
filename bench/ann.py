"""ANN benchmark: the embedded store side by side with raw index libraries and other stores.

Runs every system on the same data in its own subprocess (so peak RSS is per system) and
prints one JSON document. Data: a 384-d normalised Gaussian mixture (``--n`` points,
``--queries`` held-out queries, ground truth by exact search), or ``--npy`` vectors.

    flock /tmp/embedops-bench.lock .venv-bench/bin/python bench/ann.py --n 100000

Systems that are not installed are reported with the import error instead of numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

K = 10
KNOBS = (32, 64, 128)
SYSTEMS = ("embedded-f32", "embedded-int8", "usearch-f32", "usearch-i8", "hnswlib",
           "faiss-hnsw", "faiss-hnsw-sq8", "chromadb", "lancedb", "lancedb-ivf-hnsw-sq",
           "milvus-lite")


def make_data(n: int, q: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A normalised Gaussian mixture with low-rank cluster structure, like text embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    basis = rng.standard_normal((200, 24, dim)).astype(np.float32) / dim**0.5
    labels = rng.integers(0, 200, n + q)
    coeff = rng.standard_normal((n + q, 24)).astype(np.float32)
    x = centres[labels] * 0.25 + np.einsum("nk,nkd->nd", coeff, basis[labels])
    x += rng.standard_normal(x.shape).astype(np.float32) * 0.05
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def ground_truth(base: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    sims = queries @ base.T
    if mask is not None:
        sims[:, ~mask] = -np.inf
    return np.argsort(-sims, axis=1)[:, :K]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth,
                                                                             strict=True)]))


def timed_queries(search: Callable[[np.ndarray], list[int]], queries: np.ndarray
                  ) -> tuple[list[list[int]], float]:
    start = time.perf_counter()
    found = [search(q) for q in queries]
    return found, len(queries) / (time.perf_counter() - start)


def only_graph(index: Any) -> Any:
    """The one graph of a store's loaded collection ``index`` (one graph, or one
    segment), for benchmarks that time it beside a raw library's; exits when the
    collection holds several segments."""
    if len(index.graphs) != 1:
        raise SystemExit("the collection holds several segments: use fewer points")
    return index.graphs[0]


def threaded_qps(search: Callable[[np.ndarray], list[int]], queries: np.ndarray,
                 threads: int = 2) -> float:
    """Single-query searches from ``threads`` Python threads at once (each takes every
    ``threads``-th query): the QPS concurrent callers of one handle get."""
    parts = [queries[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda qs: [search(q) for q in qs], args=(part,))
               for part in parts]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(queries) / (time.perf_counter() - start)


def windowed_qps(search: Callable[[np.ndarray], list[int]], queries: np.ndarray,
                 threads: int, seconds: float) -> float:
    """Single-query searches from ``threads`` Python threads at once for ``seconds``,
    each going round its share of ``queries`` (every ``threads``-th) until the time is
    up: every thread searches for the whole window, so no thread idles while another
    finishes a share it was slower through (``threaded_qps``'s tail)."""
    parts = [queries[i::threads] for i in range(threads)]
    done = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(i: int) -> None:
        part, count = parts[i], 0
        barrier.wait()
        end = deadline[0]
        clock = time.perf_counter
        while clock() < end:
            search(part[count % len(part)])
            count += 1
        done[i] = count

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - start)


def peak_rss() -> int:
    """This process's peak resident set (VmHWM; ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- adapters: each returns dict(build, search(q, knob), batch(qs, knob), and optional
# filtered(q, knob), upsert(ids, vecs), delete(ids)) --------------------------------------


def adapter_embedded(dtype: str, base: np.ndarray, folder: Path) -> dict[str, Any]:
    from embedops.store import open_store

    store = open_store(folder / "store")
    store.create_collection("b", base.shape[1], fingerprint="bench", dtype=dtype,
                            index_params={"exact_threshold": 0}, payload_indexes=["bucket"])
    ids = [str(i) for i in range(len(base))]

    def build() -> dict[str, Any]:
        rates = []
        for s in range(0, len(base), 10_000):
            start = time.perf_counter()
            store.upsert("b", ids[s:s + 10_000], base[s:s + 10_000],
                         [{"bucket": i % 10} for i in range(s, min(s + 10_000, len(base)))],
                         fingerprint="bench")
            rates.append(round(min(10_000, len(base) - s) / (time.perf_counter() - start)))
        store.checkpoint("b")
        return {"insert_rate_first_10k": rates[0], "insert_rate_last_10k": rates[-1]}

    def ints(hits: list[Any]) -> list[int]:
        return [int(h.id) for h in hits]

    return {
        "build": build,
        "search": lambda q, ef: ints(store.search("b", q, K, ef=ef)[0]),
        "batch": lambda qs, ef: store.search("b", qs, K, ef=ef),
        "filtered": lambda q, ef: ints(store.search("b", q, K, filter={"field": "bucket",
                                                                      "eq": 3}, ef=ef)[0]),
        "upsert": lambda i, v: store.upsert("b", [str(x) for x in i], v,
                                            [{"bucket": int(x) % 10} for x in i],
                                            fingerprint="bench"),
        "delete": lambda i: store.delete("b", ids=[str(x) for x in i]),
        "memory": lambda: store.stats("b")["index_bytes"],
        # background work after writes: pending points merged, tombstones compacted, and
        # the changes a compaction replayed at its swap (pending again) merged
        "settle": lambda: (store.wait_merged(900) and store.wait_compacted(900)
                           and store.wait_merged(900)),
    }


def adapter_usearch(dtype: str, base: np.ndarray, folder: Path) -> dict[str, Any]:
    """Raw usearch; ``i8`` uses usearch's own float-to-int8 conversion, no rescoring."""
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip" if dtype == "f32" else "cos", dtype=dtype,
                  connectivity=16, expansion_add=128)

    def search(q: np.ndarray, ef: int) -> list[int]:
        index.expansion_search = ef
        return index.search(q, K, threads=1).keys.tolist()

    def batch(qs: np.ndarray, ef: int) -> Any:
        index.expansion_search = ef
        return index.search(qs, K)

    return {"build": lambda: index.add(np.arange(len(base)), base), "search": search,
            "batch": batch, "memory": lambda: index.memory_usage}


def adapter_hnswlib(base: np.ndarray, folder: Path) -> dict[str, Any]:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=16, ef_construction=128,
                     allow_replace_deleted=True)

    def search(q: np.ndarray, ef: int) -> list[int]:
        index.set_ef(ef)
        index.set_num_threads(1)
        return index.knn_query(q, K)[0][0].tolist()

    def batch(qs: np.ndarray, ef: int) -> Any:
        index.set_ef(ef)
        index.set_num_threads(2)
        return index.knn_query(qs, K)

    def upsert(ids: np.ndarray, vecs: np.ndarray) -> None:
        index.set_num_threads(1)
        for i, v in zip(ids, vecs, strict=True):
            index.mark_deleted(int(i))
            index.add_items(v[None, :], [int(i)], replace_deleted=True)

    return {"build": lambda: index.add_items(base, np.arange(len(base))), "search": search,
            "batch": batch, "upsert": upsert, "max_updates": 2000}


def adapter_faiss(sq8: bool, base: np.ndarray, folder: Path) -> dict[str, Any]:
    import faiss

    dim = base.shape[1]
    index = (faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 16, faiss.METRIC_INNER_PRODUCT)
             if sq8 else faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT))
    index.hnsw.efConstruction = 128

    def build() -> None:
        if sq8:
            index.train(base)
        index.add(base)

    def search(q: np.ndarray, ef: int) -> list[int]:
        faiss.omp_set_num_threads(1)
        index.hnsw.efSearch = ef
        return index.search(q[None, :], K)[1][0].tolist()

    def batch(qs: np.ndarray, ef: int) -> Any:
        faiss.omp_set_num_threads(2)
        index.hnsw.efSearch = ef
        return index.search(qs, K)

    return {"build": build, "search": search, "batch": batch}


def adapter_chromadb(base: np.ndarray, folder: Path) -> dict[str, Any]:
    import chromadb

    client = chromadb.PersistentClient(path=str(folder / "chroma"))
    coll = client.create_collection("bench", metadata={"hnsw:space": "ip", "hnsw:M": 16,
                                                   "hnsw:construction_ef": 128})

    def build() -> None:
        for s in range(0, len(base), 5000):
            idx = range(s, min(s + 5000, len(base)))
            coll.add(ids=[str(i) for i in idx], embeddings=base[s:s + 5000],
                     metadatas=[{"bucket": i % 10} for i in idx])

    def query(q: np.ndarray, ef: int, where: dict[str, Any] | None = None) -> list[int]:
        coll.modify(configuration={"hnsw": {"ef_search": ef}})
        res = coll.query(query_embeddings=[q], n_results=K, where=where)
        return [int(i) for i in res["ids"][0]]

    return {
        "build": build, "search": query,
        "batch": lambda qs, ef: coll.query(query_embeddings=qs, n_results=K),
        "filtered": lambda q, ef: query(q, ef, {"bucket": 3}),
        "upsert": lambda i, v: coll.upsert(ids=[str(x) for x in i], embeddings=v,
                                           metadatas=[{"bucket": int(x) % 10} for x in i]),
        "delete": lambda i: coll.delete(ids=[str(x) for x in i]), "max_updates": 5000,
    }


def adapter_lancedb(base: np.ndarray, folder: Path, ann: bool) -> dict[str, Any]:
    """LanceDB embedded; ``ann`` adds its IVF_HNSW_SQ index, else a flat scan."""
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(folder / "lance"))
    state: dict[str, Any] = {}

    def build() -> None:
        table = pa.table({"id": np.arange(len(base)), "bucket": np.arange(len(base)) % 10,
                          "vector": pa.FixedSizeListArray.from_arrays(
                              pa.array(base.reshape(-1)), base.shape[1])})
        state["t"] = db.create_table("b", table)
        if ann:
            state["t"].create_index(metric="dot", vector_column_name="vector",
                                    index_type="IVF_HNSW_SQ", num_partitions=64)

    def query(q: np.ndarray, ef: int, where: str | None = None) -> list[int]:
        s = state["t"].search(q).metric("dot").limit(K)
        if ann:
            s = s.nprobes(max(1, ef // 8)).ef(ef)
        if where:
            s = s.where(where, prefilter=True)
        return s.to_arrow()["id"].to_pylist()

    def upsert(ids: np.ndarray, vecs: np.ndarray) -> None:
        rows = pa.table({"id": ids, "bucket": ids % 10, "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(vecs.reshape(-1)), vecs.shape[1])})
        (state["t"].merge_insert("id").when_matched_update_all()
         .when_not_matched_insert_all().execute(rows))

    return {"build": build, "search": query,
            "batch": lambda qs, ef: [query(q, ef) for q in qs[:50]],
            "filtered": lambda q, ef: query(q, ef, "bucket = 3"), "max_queries": 200,
            "upsert": upsert,
            "delete": lambda i: state["t"].delete(f"id IN ({','.join(map(str, i))})")}


def adapter_milvus(base: np.ndarray, folder: Path) -> dict[str, Any]:
    from pymilvus import MilvusClient

    client = MilvusClient(str(folder / "milvus.db"))
    client.create_collection("b", dimension=base.shape[1], metric_type="IP")

    def build() -> None:
        for s in range(0, len(base), 5000):
            client.insert("b", [{"id": i, "vector": base[i].tolist(), "bucket": i % 10}
                                for i in range(s, min(s + 5000, len(base)))])

    def query(q: np.ndarray, ef: int, flt: str = "") -> list[int]:
        res = client.search("b", data=[q.tolist()], limit=K, filter=flt,
                            search_params={"params": {"ef": ef}})
        return [int(h["id"]) for h in res[0]]

    return {"build": build, "search": query,
            "batch": lambda qs, ef: [query(q, ef) for q in qs[:50]],
            "filtered": lambda q, ef: query(q, ef, "bucket == 3"), "max_queries": 60}


def make_adapter(name: str, base: np.ndarray, folder: Path) -> dict[str, Any]:
    table: dict[str, Callable[[], dict[str, Any]]] = {
        "embedded-f32": lambda: adapter_embedded("float32", base, folder),
        "embedded-int8": lambda: adapter_embedded("int8", base, folder),
        "usearch-f32": lambda: adapter_usearch("f32", base, folder),
        "usearch-i8": lambda: adapter_usearch("i8", base, folder),
        "hnswlib": lambda: adapter_hnswlib(base, folder),
        "faiss-hnsw": lambda: adapter_faiss(False, base, folder),
        "faiss-hnsw-sq8": lambda: adapter_faiss(True, base, folder),
        "chromadb": lambda: adapter_chromadb(base, folder),
        "lancedb": lambda: adapter_lancedb(base, folder, ann=False),
        "lancedb-ivf-hnsw-sq": lambda: adapter_lancedb(base, folder, ann=True),
        "milvus-lite": lambda: adapter_milvus(base, folder),
    }
    return table[name]()


# --- one system in one process -------------------------------------------------------------


def run_system(name: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
               ftruth: np.ndarray, update_n: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        sys_ = make_adapter(name, base, folder)
        start = time.perf_counter()
        extra = sys_["build"]()
        out: dict[str, Any] = {"system": name,
                               "build_per_s": round(len(base) / (time.perf_counter() - start))}
        out.update(extra if isinstance(extra, dict) else {})
        out["knobs"] = []
        nq = sys_.get("max_queries", len(queries))
        for ef in KNOBS:
            found, qps = timed_queries(lambda q, ef=ef: sys_["search"](q, ef), queries[:nq])
            out["knobs"].append({"ef": ef, "recall": round(recall(found, truth[:nq]), 4),
                                 "qps_1thread": round(qps, 1), "queries": nq})
        # both cores: the same single-query searches from two threads, at ef 64
        one = out["knobs"][1]["qps_1thread"]
        two = threaded_qps(lambda q: sys_["search"](q, KNOBS[1]), queries[:nq])
        out["qps_2threads"] = round(two, 1)
        out["thread_scaling"] = round(two / one, 2) if one else None
        out.update(_batch_and_filtered(sys_, queries, ftruth))
        if "memory" in sys_:
            out["index_bytes"] = int(sys_["memory"]())
        out.update(_updates(sys_, base, queries, truth, update_n))
        out["disk_bytes"] = dir_bytes(folder)
        out["peak_rss_bytes"] = peak_rss()
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _batch_and_filtered(sys_: dict[str, Any], queries: np.ndarray, ftruth: np.ndarray
                        ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    start = time.perf_counter()
    result = sys_["batch"](queries, KNOBS[1])
    done = len(result) if isinstance(result, list) else len(queries)
    out["batch_qps"] = round(done / (time.perf_counter() - start), 1)
    if "filtered" in sys_:
        sub = queries[:min(200, sys_.get("max_queries", 200))]
        found, qps = timed_queries(lambda q: sys_["filtered"](q, KNOBS[1]), sub)
        out["filtered10_recall"] = round(recall(found, ftruth[:len(sub)]), 4)
        out["filtered10_qps"] = round(qps, 1)
    return out


def _updates(sys_: dict[str, Any], base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
             n: int) -> dict[str, Any]:
    """Replace ``n`` existing points with moved vectors, then delete them; recall after each."""
    out: dict[str, Any] = {}
    n = min(n, sys_.get("max_updates", n))
    ids = np.arange(n)
    out["updated_points"] = n
    if "upsert" in sys_:
        sub = queries[:300]
        found, _ = timed_queries(lambda q: sys_["search"](q, KNOBS[1]), sub)
        out["recall_before_upsert"] = round(recall(found, truth[:300]), 4)
        rng = np.random.default_rng(1)
        moved = base[:n] + rng.standard_normal((n, base.shape[1])).astype(np.float32) * 0.005
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        with _searching(sys_, queries) as during:
            start = time.perf_counter()
            for s in range(0, n, 1000):
                sys_["upsert"](ids[s:s + 1000], moved[s:s + 1000])
            took = time.perf_counter() - start
        out["upsert_existing_per_s"] = round(n / took)
        out["search_qps_during_upserts"] = round(during[0] / took, 1)
        after = base.copy()
        after[:n] = moved
        after_truth = ground_truth(after, sub, None)
        found, _ = timed_queries(lambda q: sys_["search"](q, KNOBS[1]), sub)
        out["recall_after_upsert"] = round(recall(found, after_truth), 4)
        if "settle" in sys_:  # background merge + compaction, then recall again
            start = time.perf_counter()
            sys_["settle"]()
            out["settle_s"] = round(time.perf_counter() - start, 1)
            found, _ = timed_queries(lambda q: sys_["search"](q, KNOBS[1]), sub)
            out["recall_after_settle"] = round(recall(found, after_truth), 4)
    if "delete" in sys_:
        with _searching(sys_, queries) as during:
            start = time.perf_counter()
            for s in range(0, n, 1000):
                sys_["delete"](ids[s:s + 1000])
            took = time.perf_counter() - start
        out["delete_per_s"] = round(n / took)
        out["search_qps_during_deletes"] = round(during[0] / took, 1)
    return out


@contextlib.contextmanager
def _searching(sys_: dict[str, Any], queries: np.ndarray) -> Iterator[list[int]]:
    """Single-query searches in a thread of their own while the body runs (the
    "with searches running" of update rates); yields a one-item list: searches done."""
    done, stop = [0], threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sys_["search"](queries[done[0] % len(queries)], KNOBS[1])
            done[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()


def _child(args: argparse.Namespace) -> None:
    data = np.load(args.data)
    base, queries = data[: args.n], data[args.n:]
    truth = np.load(args.truth)
    result = run_system(args.system, base, queries, truth[0], truth[1], args.updates)
    print(json.dumps(result))


def _prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    if args.npy:
        vectors = np.load(args.npy).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rng = np.random.default_rng(0)
        vectors = vectors[rng.permutation(len(vectors))]
        q = min(args.queries, len(vectors) // 10)
        base, queries = vectors[:-q], vectors[-q:]
        args.n = len(base)
    else:
        base, queries = make_data(args.n, args.queries, args.dim)
    mask = np.arange(len(base)) % 10 == 3
    truth = np.stack([ground_truth(base, queries, None), ground_truth(base, queries, mask)])
    data_path, truth_path = work / "data.npy", work / "truth.npy"
    np.save(data_path, np.concatenate([base, queries]))
    np.save(truth_path, truth)
    return data_path, truth_path


def _mb(result: dict[str, Any], key: str) -> str:
    return f"{result[key] / 2**20:,.0f}" if result.get(key) else "–"


def _threads(result: dict[str, Any]) -> str:
    if not result.get("qps_2threads"):
        return "–"
    return f"{result['qps_2threads']:,.0f} ({result['thread_scaling']:.2f}×)"


def render(report: dict[str, Any]) -> str:
    """A markdown table of a report (one row per system)."""
    head = ("| system | build/s | recall@10 / QPS (ef 32, 64, 128) | batch QPS | filtered 10%: "
            "recall / QPS | upsert/s (recall before→after) | delete/s | index MB | disk MB "
            "| peak RSS MB | 2-thread QPS (× 1 thread, ef 64) |")
    lines = [head, "|" + " --- |" * 11]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['system']} | error: {r['error'].splitlines()[-1][:80]} |"
                         + " |" * 9)
            continue
        knobs = ", ".join(f"{k['recall']:.3f} / {k['qps_1thread']:,.0f}" for k in r["knobs"])
        filt = (f"{r['filtered10_recall']:.3f} / {r['filtered10_qps']:,.1f}"
                if "filtered10_qps" in r else "–")
        settled = (f"→{r['recall_after_settle']:.3f} after {r['settle_s']} s"
                   if "recall_after_settle" in r else "")
        ups = (f"{r['upsert_existing_per_s']:,} ({r['recall_before_upsert']:.3f}→"
               f"{r['recall_after_upsert']:.3f}{settled})" if "upsert_existing_per_s" in r
               else "–")
        lines.append(f"| {r['system']} | {r['build_per_s']:,} | {knobs} | {r['batch_qps']:,.0f} "
                     f"| {filt} | {ups} | {r.get('delete_per_s', '–')} | {_mb(r, 'index_bytes')} "
                     f"| {_mb(r, 'disk_bytes')} | {_mb(r, 'peak_rss_bytes')} "
                     f"| {_threads(r)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--npy", help="real vectors (.npy, float32 N x D) instead of synthetic")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per system")
    parser.add_argument("--render", help="print a saved JSON report as a markdown table")
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return
    if args.system:
        _child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    data_path, truth_path = _prepare(args, work)
    report: dict[str, Any] = {"n": args.n, "queries": args.queries, "dim": args.dim, "k": K,
                              "data": args.npy or "gaussian-mixture", "results": []}
    for name in args.systems.split(","):
        report["results"].append(_run_child(name, args, data_path, truth_path))
        print(json.dumps(report["results"][-1]), file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


def _run_child(name: str, args: argparse.Namespace, data_path: Path, truth_path: Path
               ) -> dict[str, Any]:
    """Run one system in a fresh process; its JSON result, or the reason it failed."""
    cmd = [sys.executable, __file__, "--system", name, "--data", str(data_path),
           "--truth", str(truth_path), "--n", str(args.n), "--updates",
           str(min(args.updates, args.n // 2))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"system": name, "error": f"timeout {args.timeout}s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return dict(json.loads(lines[-1]))
    return {"system": name, "error": proc.stderr.strip()[-400:]}


if __name__ == "__main__":
    main()
