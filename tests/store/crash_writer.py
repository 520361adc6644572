"""Crash-test writer: streams upserts and deletes into a store, announcing each commit.

Usage: python crash_writer.py STORE BATCH_SIZE [SEGMENT_SIZE], then FIRST_BATCH on a line
of stdin (the
test starts a writer ahead, so it imports while the last trial is checked; it opens the
store only once told where to start, and exits at end of input).

For batch ``b`` it upserts ids ``b-0..b-{BATCH_SIZE-1}`` (and replaces the vectors of the
first 10 ids of batch ``b-1``), prints ``U b``; then deletes ``b-0..b-4`` and prints ``D b``.
Lines are flushed only after the transaction committed. It runs until killed.
"""

from __future__ import annotations

import sys

import numpy as np

from embedops.store import open_store

DIM = 32
DELETES = 5
REPLACES = 10


def main(path: str, size: int, segment_size: int | None) -> None:
    line = sys.stdin.readline()
    if not line.strip():
        return
    first = int(line)
    store = open_store(path)
    if not any(c.name == "crash" for c in store.list_collections()):
        params = {"exact_threshold": 0, "checkpoint_every": 700, "expansion_add": 64}
        if segment_size is not None:
            params["segment_size"] = segment_size
        store.create_collection("crash", DIM, fingerprint="fp", index_params=params)
    print("ready", flush=True)
    rng = np.random.default_rng(first)
    batch = first
    while True:
        ids = [f"{batch}-{i}" for i in range(size)]
        if batch > 0:
            ids += [f"{batch - 1}-{i}" for i in range(DELETES, REPLACES)]
        vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
        store.upsert("crash", ids, vectors, [{"batch": batch} for _ in ids], fingerprint="fp")
        print(f"U {batch}", flush=True)
        store.delete("crash", ids=[f"{batch}-{i}" for i in range(DELETES)])
        print(f"D {batch}", flush=True)
        batch += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
