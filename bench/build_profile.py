"""Where a store build's time goes, tenth by tenth: the store is filled as
``bench/store_footprint.py`` fills it (clustered vectors, batches of 10,000, one
``upsert`` each, then ``wait_merged``) with timers around its parts, and the raw faiss
graph is built from the same vectors in the same batches beside it.

Timed parts (wall seconds, summed over the calls that began in each tenth of the
writes; the writer's and the background merger's calls both count):

* ``upsert``: the writer's whole call (ledger transaction, index work, waits);
* ``graph_add``: faiss inserting nodes (``HnswGraph.add``), by whichever thread;
* ``duplicate_lookup``: finding the node that holds an identical vector before an
  insert (``HnswGraph.find``, by fingerprint) and ``unique_rows`` the batch's own repeats;
* ``merge_in_writer``: the writer merging the pending segment's excess itself
  (``IndexManager.apply_upsert``, past ``MAX_PENDING``), graph work included;
* ``background_merge``: the merger's slices (``IndexManager.merge_step``);
* ``checkpoint_write``: checkpoint files written in the background (no lock held);
* ``backlog_wait``: a writer waiting for the merger to make room in a full pending segment.

Prints one JSON object: per tenth, the seconds of each part and the writes' rate; the
raw graph's rate per tenth; last ÷ first for both.

    .venv/bin/python bench/build_profile.py --n 200000
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embedops.store import embedded, hnsw_graph, hnsw_index, index_manager, open_store
from store_footprint import BATCH, ClusteredBlocks, batch_points, raw_faiss_build

_tenth = [0]  # the tenth of the writes now under way
_seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_guard = threading.Lock()


def _timed(owner: Any, name: str, part: str) -> None:
    """Wrap ``owner.name`` so that its wall time counts towards ``part``."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tenth, began = _tenth[0], time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _guard:
                _seconds[tenth][part] += time.perf_counter() - began

    setattr(owner, name, wrapper)


def _instrument() -> None:
    _timed(hnsw_graph.HnswGraph, "add", "graph_add")
    _timed(hnsw_graph.HnswGraph, "find", "duplicate_lookup")
    _timed(hnsw_index, "_unique_rows", "unique_rows")
    _timed(index_manager.IndexManager, "merge_step", "background_merge")
    _timed(index_manager.IndexManager, "write_checkpoint", "checkpoint_write")
    _timed(embedded.EmbeddedStore, "_wait_for_merger", "backlog_wait")
    original = index_manager.IndexManager.apply_upsert

    def apply_upsert(self: Any, row: Any, keys: np.ndarray, vectors: np.ndarray) -> None:
        live = self.live.get(row.cid)
        merging = live is not None and live.index.pending + len(keys) > \
            index_manager.MAX_PENDING
        began = time.perf_counter()
        try:
            original(self, row, keys, vectors)
        finally:
            if merging:
                with _guard:
                    _seconds[_tenth[0]]["merge_in_writer"] += time.perf_counter() - began

    index_manager.IndexManager.apply_upsert = apply_upsert  # type: ignore[method-assign]


def store_build(n: int, dim: int, dtype: str) -> list[float]:
    """Fill a new store; seconds per batch (the final ``wait_merged`` in the last)."""
    data = ClusteredBlocks(n, dim)
    tenths = max(1, n // BATCH // 10)
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "s")
        store.create_collection("c", dim, dtype=dtype, fingerprint="bench",
                                index_params={"exact_threshold": 0})
        for number, start in enumerate(range(0, n, BATCH)):
            _tenth[0] = min(9, number // tenths)
            end = min(start + BATCH, n)
            ids, payloads = batch_points(start, end)
            x = data[start:end]
            began = time.perf_counter()
            store.upsert("c", ids, x, payloads, fingerprint="bench")
            seconds.append(time.perf_counter() - began)
            with _guard:
                _seconds[_tenth[0]]["upsert"] += seconds[-1]
        began = time.perf_counter()
        store.wait_merged(timeout=24 * 3600)
        waited = time.perf_counter() - began
        seconds[-1] += waited
        with _guard:
            _seconds[9]["upsert"] += waited
        store.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtype", default="float32", choices=["float32", "int8"])
    args = parser.parse_args()
    if args.n < 10 * BATCH:
        parser.error(f"--n must be at least {10 * BATCH} (ten batches)")
    _instrument()
    seconds = store_build(args.n, args.dim, args.dtype)
    tenth = len(seconds) // 10
    rates = [round(tenth * BATCH / sum(seconds[i * tenth:(i + 1) * tenth]))
             for i in range(10)]
    parts = [{part: round(value, 2) for part, value in sorted(_seconds[i].items())}
             for i in range(10)]
    raw = raw_faiss_build(args.n, args.dim, args.dtype, "clustered-blocks")
    print(json.dumps({
        "n": args.n, "dim": args.dim, "dtype": args.dtype, "batch": BATCH,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "store_points_per_s_by_tenth": rates,
        "store_last_over_first": round(rates[-1] / rates[0], 3),
        "seconds_by_tenth": parts,
        "raw_faiss": raw,
    }, indent=1))


if __name__ == "__main__":
    main()
