"""Bytes per vector of the embedded store, measured: resident index memory, the SQLite
database and the index checkpoint on disk, as the store grows from ``--n``/2 to ``--n``
points of ``--dim`` random unit vectors with a small payload per point (a document id, a
chunk number, a language: what ingest writes, give or take; and a ``bucket`` 0–99 for
filters of 1% and 10% selectivity). ``--keep DIR`` keeps the store of the last dtype
there, for ``bench/store_open.py``. ``--data clustered`` writes ``bench/ann.py``'s
clustered mixture instead: the bytes are the same, but recall can only be measured on
vectors with neighbours (on random 384-d unit vectors every point is about as far as
every other, and raw faiss HNSW finds 8% of the true top 10 at ef 64 on 100,000 of them).
``--data clustered-blocks`` is that mixture made block by block (``ClusteredBlocks``),
for sizes whose vectors do not fit in memory beside the store (10M).

The per-vector figure is the growth between the two sizes divided by the points added
(so fixed costs fall out); the fixed part is what is left at
the first size. ``embedops cost`` carries these figures (``embedops/cost/store_measured.py``)
to price a store of any size. Prints JSON, one object per dtype.

``--raw-faiss`` then builds the raw faiss HNSW graph the store wraps (same type, M and
ef_construction, int8 codes for int8) from the same vectors in the same batches, in the
same process, and reports its build rate and its own last-tenth ÷ first-tenth ratio
beside the store's: the baseline for the goal that the insert rate must not collapse.

    .venv/bin/python bench/store_footprint.py --n 1000000 --dtypes float32,int8
    .venv/bin/python bench/store_footprint.py --n 1000000 --dtypes int8 --data clustered --raw-faiss
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

from embedops.store import open_store, quantization
from embedops.store.hnsw_graph import new_faiss_graph
from embedops.store.hnsw_index import DEFAULT_PARAMS

BATCH = 10_000


def _rss(field: str = "VmRSS") -> int:
    """The process's resident bytes now (``VmHWM``: the most it has held)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def _disk(path: Path) -> dict[str, int]:
    sqlite = sum(p.stat().st_size for p in path.glob("store.sqlite*"))
    index = sum(p.stat().st_size for p in (path / "index").glob("*") if p.is_file())
    return {"sqlite": sqlite, "index_files": index}


def _fill(path: Path, lo: int, hi: int, dim: int, dtype: str,
          seconds: list[float], data: np.ndarray | ClusteredBlocks | None = None,
          params: dict[str, int] | None = None) -> dict[str, int]:
    """Write points ``lo..hi`` (the collection is created at 0), merge, checkpoint,
    close; the sizes after that. Appends each batch's seconds to ``seconds``, the
    final merge counted in the last batch (graph work the writes still owed)."""
    rng = np.random.default_rng(lo)
    store = open_store(path)
    if lo == 0:
        store.create_collection("c", dim, dtype=dtype, fingerprint="bench",
                                index_params={"exact_threshold": 0, **(params or {})})
    for start in range(lo, hi, BATCH):
        end = min(start + BATCH, hi)
        if data is None:
            x = rng.standard_normal((end - start, dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        else:
            x = data[start:end]
        ids, payloads = batch_points(start, end)
        began = time.perf_counter()
        store.upsert("c", ids, x, payloads, fingerprint="bench")
        seconds.append(time.perf_counter() - began)
    began = time.perf_counter()
    store.wait_merged(timeout=24 * 3600)
    seconds[-1] += time.perf_counter() - began
    store.checkpoint("c")
    memory = store.index_memory_bytes()
    store.close()
    return {"index_memory": memory, **_disk(path)}


def batch_points(start: int, end: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Ids and payloads of points ``start``..``end``: four chunks a document, a language,
    and a ``bucket`` 0-99 for filters of 1% and 10% selectivity."""
    ids = [f"doc-{i // 4}#{i % 4}" for i in range(start, end)]
    payloads: list[dict[str, Any]] = [
        {"document_id": f"doc-{i // 4}", "chunk": i % 4, "lang": "en", "bucket": i % 100}
        for i in range(start, end)]
    return ids, payloads


def _centres(dim: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """The mixture's 200 centres, their 24-dimensional spreads, and the generator that
    drew them (seed 0; ``clustered`` goes on drawing from it)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    basis = rng.standard_normal((200, 24, dim)).astype(np.float32) / dim**0.5
    return centres, basis, rng


def _mix(centres: np.ndarray, basis: np.ndarray, labels: np.ndarray, coeff: np.ndarray,
         rng: np.random.Generator) -> np.ndarray:
    """Unit points of the mixture: each row's centre, its spread by ``coeff``, noise."""
    part = centres[labels] * 0.25 + np.einsum("nk,nkd->nd", coeff, basis[labels])
    part += rng.standard_normal(part.shape, dtype=np.float32) * 0.05
    return part / np.linalg.norm(part, axis=1, keepdims=True)


def clustered(n: int, dim: int, queries: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``--data clustered``: ``n`` points and ``queries`` held-out queries of
    ``bench/ann.py``'s mixture (200 centres, a 24-dimensional spread around each, a little
    noise), made a slice at a time so that a million points fit in memory."""
    points, held_out, _ = clustered_labelled(n, dim, queries)
    return points, held_out


def clustered_labelled(n: int, dim: int, queries: int = 1000
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``clustered``'s points and queries, and each point's centre (0-199)."""
    centres, basis, rng = _centres(dim)
    total = n + queries
    labels = rng.integers(0, 200, total)
    coeff = rng.standard_normal((total, 24)).astype(np.float32)
    x = np.empty((total, dim), dtype=np.float32)
    for lo in range(0, total, 20_000):
        hi = min(lo + 20_000, total)
        x[lo:hi] = _mix(centres, basis, labels[lo:hi], coeff[lo:hi], rng)
    return x[:n], x[n:], labels[:n]


class ClusteredBlocks:
    """``--data clustered-blocks``: the same mixture as ``clustered``, but each block of
    ``BATCH`` points drawn from a seed of its own, so a block is made when it is wanted
    and a store of any size streams (10M × 384 float32 is 15 GB, more than fits beside
    the store being built). ``x[lo:hi]`` gives rows ``lo``..``hi`` (whole blocks)."""

    def __init__(self, n: int, dim: int) -> None:
        self.n, self.dim = n, dim
        self.centres, self.basis, _ = _centres(dim)

    def block(self, number: int) -> np.ndarray:
        return self._draw(np.random.default_rng((1, number)), BATCH)

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        labels = rng.integers(0, 200, size)
        coeff = rng.standard_normal((size, 24)).astype(np.float32)
        return _mix(self.centres, self.basis, labels, coeff, rng)

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi = rows.start or 0, min(rows.stop if rows.stop is not None else self.n, self.n)
        if lo % BATCH:
            raise ValueError("blocks start at multiples of BATCH")
        parts = [self.block(b) for b in range(lo // BATCH, (hi + BATCH - 1) // BATCH)]
        return np.concatenate(parts)[:hi - lo] if parts else np.zeros((0, self.dim),
                                                                       np.float32)

    def queries(self, count: int) -> np.ndarray:
        """Held-out queries of the mixture (a seed no block uses)."""
        return self._draw(np.random.default_rng((2, 0)), count)


def base_vectors(n: int, dim: int, data: str = "random") -> np.ndarray:
    """The vectors ``measure`` writes, in row order (for ground truth elsewhere)."""
    if data == "clustered":
        return clustered(n, dim)[0]
    half, out = n // 2, []
    for lo, hi in ((0, half), (half, n)):
        rng = np.random.default_rng(lo)
        for start in range(lo, hi, BATCH):
            x = rng.standard_normal((min(start + BATCH, hi) - start, dim)).astype(np.float32)
            out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return np.concatenate(out)


def _source(n: int, dim: int, data: str) -> np.ndarray | ClusteredBlocks | None:
    """The vectors of ``--data`` (None for random ones, which ``_fill`` draws batch by
    batch and ``base_vectors`` draws again)."""
    if data == "clustered":
        return clustered(n, dim)[0]
    if data == "clustered-blocks":
        return ClusteredBlocks(n, dim)
    return None


def _tenths(seconds: list[float]) -> dict[str, float]:
    """Build rate overall, in the first and the last tenth of the batches, and their ratio."""
    tenth = max(1, len(seconds) // 10)
    first_rate = tenth * BATCH / sum(seconds[:tenth])
    last_rate = tenth * BATCH / sum(seconds[-tenth:])
    return {"build_seconds": round(sum(seconds), 1),
            "build_points_per_s": round(len(seconds) * BATCH / sum(seconds)),
            "first_tenth_points_per_s": round(first_rate),
            "last_tenth_points_per_s": round(last_rate),
            "last_over_first": round(last_rate / first_rate, 3)}


def raw_faiss_build(n: int, dim: int, dtype: str, data: str) -> dict[str, Any]:
    """The raw faiss graph the store wraps, built from the vectors ``measure`` wrote, in
    the same batches: seconds per batch in ``graph.add`` alone (int8: the codes made
    beforehand, as the store's own quantizer makes them with a clip of 1.0)."""
    graph = new_faiss_graph(dim, "cosine", dtype, int(DEFAULT_PARAMS["connectivity"]),
                            int(DEFAULT_PARAMS["expansion_add"]))
    points = _source(n, dim, data)
    if points is None:
        points = base_vectors(n, dim)
    seconds = []
    for start in range(0, n, BATCH):
        rows = np.ascontiguousarray(points[start:min(start + BATCH, n)], dtype=np.float32)
        if dtype == "int8":
            rows = quantization.quantize(rows, 1.0).astype(np.float32)
        began = time.perf_counter()
        graph.add(rows)
        seconds.append(time.perf_counter() - began)
    return _tenths(seconds)


def measure(n: int, dim: int, dtype: str, keep: Path | None = None,
            data: str = "random", params: dict[str, int] | None = None) -> dict[str, Any]:
    half = n // 2
    seconds: list[float] = []
    points = _source(n, dim, data)
    with tempfile.TemporaryDirectory() as folder:
        path = keep if keep is not None else Path(folder) / "s"
        first = _fill(path, 0, half, dim, dtype, seconds, points, params)
        second = _fill(path, half, n, dim, dtype, seconds, points, params)
    added = n - half
    per_vector = {k: round((second[k] - first[k]) / added, 1) for k in first}
    fixed = {k: round(first[k] - per_vector[k] * half) for k in first}
    return {"dtype": dtype, "dim": dim, "n": n, "data": data, "index_params": params or {},
            "per_vector_bytes": per_vector,
            "fixed_bytes": fixed, "at_n": second, **_tenths(seconds),
            "rss_bytes_after": _rss(), "peak_rss_bytes": _rss("VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtypes", default="float32,int8")
    parser.add_argument("--keep", type=Path, help="keep the (last dtype's) store here")
    parser.add_argument("--data", choices=("random", "clustered", "clustered-blocks"),
                        default="random")
    parser.add_argument("--segment-size", type=int,
                        help="the collection's index_params.segment_size (default: the "
                        "store's)")
    parser.add_argument("--raw-faiss", action="store_true",
                        help="also build the raw faiss graph from the same vectors (baseline; "
                        "one graph, whatever --segment-size)")
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")
    for dtype in dtypes:
        keep = args.keep if args.keep is not None and dtype == dtypes[-1] else None
        if keep is not None and keep.exists():
            parser.error(f"{keep} exists")
        params = {} if args.segment_size is None else {"segment_size": args.segment_size}
        result = measure(args.n, args.dim, dtype, keep, args.data, params)
        if args.raw_faiss:
            raw = raw_faiss_build(args.n, args.dim, dtype, args.data)
            result["raw_faiss"] = raw
            result["store_over_raw_build_rate"] = round(
                result["build_points_per_s"] / raw["build_points_per_s"], 3)
            result["store_over_raw_last_over_first"] = round(
                result["last_over_first"] / raw["last_over_first"], 3)
        result["machine"] = f"{platform.machine()}, {platform.python_implementation()} " \
                            f"{platform.python_version()}"
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
