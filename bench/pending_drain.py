"""How fast the background merger drains the pending segment when nothing else runs, and
how long another holder of the index lock waits meanwhile.

A store of ``--n`` clustered points (batches of 10,000, then ``wait_merged``) is built
once and kept. Each run copies it, writes ``--extra`` new points in one ``upsert`` (all
of them land in the pending segment) and times the background merger until nothing is
pending; a thread meanwhile asks for ``index_memory_bytes()`` every ``--probe-every``
seconds (it takes the index lock shared, as a search does, without counting as a search)
and records its waits.
The named baseline, in the same run: the raw faiss graph built from the same base
vectors, a copy of it taking the same extra rows in one ``add``.

``--writer-waits`` adds, alternating with each run above, a run in which the writer
waits for the merger: ``PENDING_MAX`` is set to 0 for its ``upsert``, which then returns
only once the merger has merged all its points (``_wait_for_merger``), as a writer past
the limit does; the merger then slices wide (``IndexManager.merge_step(wide=True)``).
Both modes report the seconds from the write's start until nothing is pending, and the
ratio of their rates run by run. (The probe runs only after the write returns: in this
mode the drain is over by then, so what wide slices cost a search is not measured here.)
Each run waits ``MERGE_YIELD_WINDOW_S`` after the search that loads the index, so the
merger does not yield to searches during the drain.

    .venv/bin/python bench/pending_drain.py --n 200000 --runs 3 --keep /tmp/drain-base
    .venv/bin/python bench/pending_drain.py --n 200000 --runs 3 --keep /tmp/drain-base \
        --writer-waits
    PYTHONPATH=<checkout>/src .venv/bin/python bench/pending_drain.py ...  # another commit

Prints one JSON object; rates as median (min–max) over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedops.store import embedded, open_store
from embedops.store.embedded import MERGE_YIELD_WINDOW_S
from embedops.store.hnsw_graph import new_faiss_graph
from embedops.store.hnsw_index import DEFAULT_PARAMS
from run_stats import summary
from store_footprint import BATCH, ClusteredBlocks, batch_points

DIM = 384


def build_base(path: Path, data: ClusteredBlocks, n: int) -> None:
    """The kept base store (built once; a later invocation with the same ``--keep``
    reuses it)."""
    if (path / "built").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    store = open_store(path / "s")
    store.create_collection("c", DIM, fingerprint="bench",
                            index_params={"exact_threshold": 0})
    for start in range(0, n, BATCH):
        ids, payloads = batch_points(start, min(start + BATCH, n))
        store.upsert("c", ids, data[start:start + len(ids)], payloads, fingerprint="bench")
    store.wait_merged(timeout=24 * 3600)
    store.close()
    (path / "built").write_text(f"{n}\n")


def store_drain(base: Path, data: ClusteredBlocks, n: int, extra: int, probe_every: float,
                writer_waits: bool = False) -> dict[str, Any]:
    """One run on a copy of the base store: seconds of the write, seconds of the drain,
    the probe's waits. ``writer_waits``: the write waits for the merger to merge all its
    points (the drain then happens inside it)."""
    ids, payloads = batch_points(n, n + extra)
    rows = data[n:n + extra]
    with tempfile.TemporaryDirectory(dir=base.parent) as folder:
        shutil.copytree(base / "s", Path(folder) / "s")
        store = open_store(Path(folder) / "s")
        store.search("c", data.queries(1)[0], k=10)  # (loads the index)
        time.sleep(MERGE_YIELD_WINDOW_S)  # (then no search counts as running)
        limit = embedded.PENDING_MAX
        embedded.PENDING_MAX = 0 if writer_waits else limit
        try:
            began = time.perf_counter()
            store.upsert("c", ids, rows, payloads, fingerprint="bench")
            written = time.perf_counter()
        finally:
            embedded.PENDING_MAX = limit
        waits: list[float] = []
        done = threading.Event()

        def probe() -> None:
            while not done.wait(probe_every):
                asked = time.perf_counter()
                store.index_memory_bytes()
                waits.append(time.perf_counter() - asked)

        prober = threading.Thread(target=probe)
        prober.start()
        store.wait_merged(timeout=3600)
        drained = time.perf_counter()
        done.set()
        prober.join()
        store.close()
    waits.sort()
    return {"write_s": written - began, "drain_s": drained - written,
            "until_merged_s": drained - began,
            "probe_wait_ms_p50": 1000 * waits[len(waits) // 2] if waits else None,
            "probe_wait_ms_max": 1000 * waits[-1] if waits else None, "probes": len(waits)}


def raw_graph(data: ClusteredBlocks, n: int) -> faiss.IndexHNSW:
    graph = new_faiss_graph(DIM, "cosine", "float32", int(DEFAULT_PARAMS["connectivity"]),
                            int(DEFAULT_PARAMS["expansion_add"]))
    for start in range(0, n, BATCH):
        graph.add(np.ascontiguousarray(data[start:min(start + BATCH, n)], dtype=np.float32))
    return graph


def raw_add_s(graph: faiss.IndexHNSW, data: ClusteredBlocks, n: int, extra: int) -> float:
    copy = faiss.clone_index(graph)
    rows = np.ascontiguousarray(data[n:n + extra], dtype=np.float32)
    began = time.perf_counter()
    copy.add(rows)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--extra", type=int, default=20_000,
                        help="points written at once (at most the pending segment's 20,000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--probe-every", type=float, default=0.5,
                        help="seconds between two probes of the index lock")
    parser.add_argument("--keep", type=Path, required=True, help="folder of the base store")
    parser.add_argument("--writer-waits", action="store_true",
                        help="also time drains that a waiting writer made (alternating)")
    args = parser.parse_args()
    data = ClusteredBlocks(args.n + args.extra, DIM)
    load_at_start = os.getloadavg()[0]
    build_base(args.keep, data, args.n)
    graph = raw_graph(data, args.n)
    runs, raw, waited = [], [], []
    for _ in range(args.runs):  # (the store and the raw graph alternate)
        runs.append(store_drain(args.keep, data, args.n, args.extra, args.probe_every))
        raw.append(raw_add_s(graph, data, args.n, args.extra))
        if args.writer_waits:
            waited.append(store_drain(args.keep, data, args.n, args.extra, args.probe_every,
                                      writer_waits=True))
    drain_rates = [args.extra / r["drain_s"] for r in runs]
    raw_rates = [args.extra / s for s in raw]
    report: dict[str, Any] = {
        "n": args.n, "extra": args.extra, "runs": args.runs, "probe_every_s": args.probe_every,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "load_at_start": load_at_start,
        "store_drain_points_per_s": summary(drain_rates, 0),
        "store_drain_points_per_s_by_run": [round(rate) for rate in drain_rates],
        "raw_faiss_one_add_points_per_s": summary(raw_rates, 0),
        "drain_over_raw": summary([d / r for d, r in zip(drain_rates, raw_rates,
                                                         strict=True)], 2),
        "write_s": summary([r["write_s"] for r in runs], 2),
        "probe_wait_ms_p50": summary([r["probe_wait_ms_p50"] for r in runs
                                      if r["probe_wait_ms_p50"] is not None], 1),
        "probe_wait_ms_max": summary([r["probe_wait_ms_max"] for r in runs
                                      if r["probe_wait_ms_max"] is not None], 1),
    }
    if waited:
        idle = [args.extra / r["until_merged_s"] for r in runs]
        busy = [args.extra / r["until_merged_s"] for r in waited]
        report["idle_until_merged_points_per_s"] = summary(idle, 0)
        report["writer_waits_until_merged_points_per_s"] = summary(busy, 0)
        report["writer_waits_over_idle"] = summary(
            [b / i for b, i in zip(busy, idle, strict=True)], 2)
        report["writer_waits_over_raw"] = summary(
            [b / r for b, r in zip(busy, raw_rates, strict=True)], 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
