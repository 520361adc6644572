"""The graph's key -> position map: sorted arrays (``store/key_positions.py``) against the
Python dictionary it replaced (the baseline, ``dict``, as fd1977d built and used it).

For each structure, over the labels of a real checkpoint (``--labels``, a graph's
``*.labels.npy``) or made up (``--n``: ascending row keys, ``--replaced`` of them removed
and added again at the end, as replacements leave them; ``--shuffled``: in random
order): the time to build the map, the longest the interpreter went without running
another thread meanwhile (a thread that wakes every 0.5 ms measures it), the bytes it
holds per key (tracemalloc, in a pass of its own), the time to find 1,000 live keys
and to add 1,000 new ones, and the longest and total time of ``--grow`` more keys added
1,000 at a time, as merges add them with the index lock held (the sorted arrays fold
their recent keys in meanwhile; the dictionary resizes). The graph's fingerprint table,
which folds the same way, gets a line of its own (``structure``: ``fingerprints``).
Prints JSON lines, one per structure and run, alternating.

With ``--checkpoint MANIFEST`` (an index folder's ``<collection>.json``) it instead loads
that checkpoint's graph with the code on ``PYTHONPATH`` and prints the process's
resident memory before and after the graph builds its key map: run it with each
checkout's ``src`` to compare them in a real process.

    .venv/bin/python bench/key_map.py --labels /tmp/s1m-int8/index/1-100.labels.npy
    .venv/bin/python bench/key_map.py --n 1000000 --replaced 0.3 --shuffled
    PYTHONPATH=<checkout>/src .venv/bin/python bench/key_map.py \
        --checkpoint /tmp/s1m-int8/index/1.json
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ASKED = 1_000
CHUNK = 1 << 16  # the baseline's build: labels entered between two pauses


class DictMap:
    """The baseline: key -> position in a dictionary (fd1977d's ``HnswGraph``)."""

    def __init__(self, labels: np.ndarray) -> None:
        built: dict[int, int] = {}
        for start in range(0, len(labels), CHUNK):
            chunk = labels[start:start + CHUNK]
            alive = np.flatnonzero(chunk >= 0)
            built.update(zip(chunk[alive].tolist(), (alive + start).tolist(), strict=True))
            time.sleep(0)
        self.map = built

    def find(self, keys: np.ndarray, labels: np.ndarray) -> np.ndarray:
        held = self.map
        return np.fromiter((held.get(k, -1) for k in keys.tolist()), dtype=np.int64,
                           count=len(keys))

    def add(self, keys: np.ndarray, positions: np.ndarray, labels: np.ndarray) -> None:
        self.map.update(zip(keys.tolist(), positions.tolist(), strict=True))


class SortedMap:
    """``KeyPositions``, built as the store's merger builds it."""

    def __init__(self, labels: np.ndarray) -> None:
        from embedops.store.key_positions import KeyPositions  # (not in old checkouts)

        self.map = KeyPositions.from_labels(labels)

    def find(self, keys: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return self.map.find(keys, labels)

    def add(self, keys: np.ndarray, positions: np.ndarray, labels: np.ndarray) -> None:
        self.map.add(keys, positions, labels)


STRUCTURES: dict[str, Callable[[np.ndarray], Any]] = {"dict": DictMap, "sorted": SortedMap}


def made_up_labels(n: int, replaced: float, shuffled: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keys = np.arange(1, n + 1, dtype=np.int64)
    if shuffled:
        keys = rng.permutation(keys)
    again = np.sort(rng.choice(n, int(n * replaced), replace=False))
    labels = np.concatenate([keys, keys[again]])
    labels[again] = -1
    return labels


def longest_hold(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result, its seconds, and the longest gap a thread that asks for the
    interpreter every 0.5 ms saw meanwhile."""
    stop, worst = threading.Event(), [0.0]

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.0005)
            now = time.perf_counter()
            worst[0], last = max(worst[0], now - last), now

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.02)
    began = time.perf_counter()
    result = work()
    took = time.perf_counter() - began
    stop.set()
    ticker.join()
    return result, took, worst[0]


def measure(name: str, labels: np.ndarray, seed: int, grow_by: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    structure = STRUCTURES[name]
    tracemalloc.start()
    held = structure(labels)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    built, took, hold = longest_hold(lambda: structure(labels))
    live = np.flatnonzero(labels >= 0)
    asked = labels[rng.choice(live, ASKED, replace=False)]
    began = time.perf_counter()
    found = built.find(asked, labels)
    find_s = time.perf_counter() - began
    assert np.array_equal(labels[found], asked)
    grown = np.concatenate([labels, np.full(ASKED + 1, -1, dtype=np.int64)])
    new_keys = np.arange(ASKED, dtype=np.int64) + int(labels.max()) + 1
    grown[len(labels):len(labels) + ASKED] = new_keys
    positions = np.arange(len(labels), len(labels) + ASKED, dtype=np.int64)
    began = time.perf_counter()
    built.add(new_keys, positions, grown)
    add_s = time.perf_counter() - began
    longest, total = grow(built, grown, grow_by)
    assert built.find(np.asarray([int(grown[len(grown) - 2])]), grown)[0] == len(grown) - 2
    return {"structure": name, "keys": len(live), "build_s": round(took, 4),
            "longest_hold_ms": round(1000 * hold, 1),
            "bytes_per_key": round(size / len(live), 1),
            "find_1000_us": round(1e6 * find_s, 1), "add_1000_us": round(1e6 * add_s, 1),
            f"grow_{grow_by}_longest_add_ms": round(1000 * longest, 1),
            f"grow_{grow_by}_total_s": round(total, 3),
            "load": round(os.getloadavg()[0], 2)}


def grow(built: Any, labels: np.ndarray, count: int) -> tuple[float, float]:
    """Add ``count`` new keys to ``built`` 1,000 at a time, after those ``labels`` hold
    (which grow with them); the longest add's seconds and all of them."""
    start = len(labels) - 1 - ASKED  # (the slot after the keys ``measure`` added)
    first_key = int(labels.max()) + 1
    labels.resize(len(labels) + count, refcheck=False)
    labels[start + ASKED + 1:] = -1
    longest = total = 0.0
    for lo in range(0, count, ASKED):
        keys = np.arange(first_key + lo, first_key + lo + ASKED, dtype=np.int64)
        at = np.arange(start + ASKED + lo, start + 2 * ASKED + lo, dtype=np.int64)
        labels[at] = keys
        began = time.perf_counter()
        built.add(keys, at, labels)
        took = time.perf_counter() - began
        longest, total = max(longest, took), total + took
    return longest, total


def fingerprint_growth(n: int, grow_by: int, seed: int) -> dict[str, Any]:
    """``grow`` for the graph's fingerprint table of ``n`` nodes."""
    from embedops.store.fingerprints import Fingerprints

    rng = np.random.default_rng(seed)
    table = Fingerprints(rng.integers(0, 2**63, n, dtype=np.uint64),
                         np.arange(n, dtype=np.int64))
    longest = total = 0.0
    for lo in range(n, n + grow_by, ASKED):
        prints = rng.integers(0, 2**63, ASKED, dtype=np.uint64)
        began = time.perf_counter()
        table.add(prints, np.arange(lo, lo + ASKED, dtype=np.int64))
        took = time.perf_counter() - began
        longest, total = max(longest, took), total + took
    return {"structure": "fingerprints", "keys": n,
            f"grow_{grow_by}_longest_add_ms": round(1000 * longest, 1),
            f"grow_{grow_by}_total_s": round(total, 3),
            "load": round(os.getloadavg()[0], 2)}


def checkpoint_rss(manifest_path: Path) -> dict[str, Any]:
    """Resident bytes before and after a loaded graph builds its key map."""
    from embedops.store.hnsw_graph import HnswGraph  # (the checkout's, by PYTHONPATH)
    from store_footprint import _rss

    folder, manifest = manifest_path.parent, json.loads(manifest_path.read_text())
    graph = HnswGraph.load(folder / manifest["file"], folder / manifest["labels"],
                           manifest["dim"], manifest["metric"], manifest["dtype"])
    assert graph is not None
    graph.search(np.ones((1, manifest["dim"]), dtype=np.float32), 10, 64)
    before = _rss()
    began = time.perf_counter()
    if hasattr(graph, "positions_of"):
        graph.positions_of(np.zeros(1, dtype=np.int64))
    else:  # (fd1977d and before: a dictionary, built on first use)
        graph.positions  # noqa: B018
    took = time.perf_counter() - began
    after = _rss()
    return {"checkpoint": str(manifest_path), "nodes": len(graph), "build_s": round(took, 4),
            "rss_before_mb": round(before / 2**20, 1), "rss_after_mb": round(after / 2**20, 1),
            "bytes_per_node": round((after - before) / len(graph), 1),
            "load": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, help="a checkpoint's *.labels.npy")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--replaced", type=float, default=0.1)
    parser.add_argument("--shuffled", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grow", type=int, default=200_000,
                        help="keys added 1,000 at a time after the build")
    parser.add_argument("--checkpoint", type=Path, help="an index folder's manifest")
    args = parser.parse_args()
    if args.checkpoint is not None:
        print(json.dumps(checkpoint_rss(args.checkpoint)))
        return
    labels = (np.load(args.labels) if args.labels is not None
              else made_up_labels(args.n, args.replaced, args.shuffled))
    source = str(args.labels) if args.labels is not None else (
        f"made up: {args.n:,}, replaced {args.replaced}, shuffled {args.shuffled}")
    for structure in STRUCTURES.values():  # (imports outside the measured passes)
        structure(labels[:10])
    for run in range(args.runs):
        for name in STRUCTURES:
            print(json.dumps({"labels": source, "run": run,
                              **measure(name, labels.copy(), run, args.grow)}), flush=True)
        print(json.dumps({"run": run, **fingerprint_growth(
            int(np.count_nonzero(labels >= 0)), args.grow, run)}), flush=True)


if __name__ == "__main__":
    main()
