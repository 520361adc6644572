"""Which graph position holds a node key? Sorted arrays, checked against the labels.

A graph's labels map each position to its node's key (``hnsw_graph``); writes need the
reverse, to find the nodes of the keys they remove, rename or read back. A Python
dictionary did it at ~106 bytes a node by tracemalloc's count (its table and two int
objects; 136 B of resident memory at 1M nodes) and took 0.2-0.3 s to build at 1M nodes,
all of it holding the interpreter, up to ~50 ms in one go when it resized.

Here: the keys sorted, with their positions beside them (16 bytes a node), plus a
dictionary of the keys added since the last sort, merged into the arrays when it
outgrows a 64th of them (``sorted_lookup``, as ``fingerprints`` does). Building the
arrays is numpy's sort, which lets go of the interpreter: 0.01 s at 1M nodes whose keys
come in ascending runs, as row keys do, 0.14 s in random order.

Removals and renames change only the labels. A position found is the key's only while
the labels still give that key at that position (``find`` checks), so the entries of
removed and renamed nodes need no removal here. A key placed again (removed and added,
renamed back) stands once more, newest last, which is the one a lookup takes. The
entries the labels no longer agree with are dropped when they come to outnumber the
rest, in one pass over the arrays (no sort), and whenever the graph is rebuilt:
compaction makes a new graph. (A key renamed away and back to the same position stands
twice with both entries right; the store renames only to fresh group keys.)
"""

from __future__ import annotations

import numpy as np

from embedops.store import sorted_lookup

MIN_RECENT = 4096  # keys added since the last sort, at least, before they are folded in
# Folds between two counts of the arrays' stale entries (a pass over the labels: ~10 ms
# at 1M nodes, with the index lock held).
STALE_CHECK_FOLDS = 16
BYTES_PER_KEY = 16  # a key and its position in the sorted arrays


class KeyPositions:
    """Key -> position of a graph's live nodes, given its labels (module docstring)."""

    def __init__(self, keys: np.ndarray, positions: np.ndarray) -> None:
        """Holding ``keys`` at ``positions`` (distinct keys; sorted here: a stable sort
        is a merge of runs, ~13 ms at 1M keys in a few ascending runs)."""
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._positions = np.asarray(positions, dtype=np.int64)[order]
        self._recent: dict[int, int] = {}
        self._folds = 0

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> KeyPositions:
        """The map of the live positions in ``labels`` (position -> key, -1: removed)."""
        alive = np.flatnonzero(labels >= 0)
        keys = labels[alive]
        if np.any(keys < 0):  # (labels removed while read: off the index lock)
            alive, keys = alive[keys >= 0], keys[keys >= 0]
        return cls(keys, alive)

    def __len__(self) -> int:
        """Entries held, those of removed nodes not folded away yet included."""
        return len(self._keys) + len(self._recent)

    @property
    def nbytes(self) -> int:
        """Bytes of the sorted arrays (the dictionary of recent keys holds at most a
        64th as many entries, ~100 bytes each: up to ~1.6 bytes a node more)."""
        return self._keys.nbytes + self._positions.nbytes

    def find(self, keys: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per key: the position whose label in ``labels`` is that key, else -1."""
        keys = np.asarray(keys, dtype=np.int64)
        found = sorted_lookup.find(self._keys, self._positions, self._recent, keys)
        held = np.flatnonzero(found >= 0)
        stale = held[labels[found[held]] != keys[held]]  # removed or renamed since
        found[stale] = -1
        found[keys < 0] = -1  # (-1 is a removed position's label, never a key)
        return found

    def add(self, keys: np.ndarray, positions: np.ndarray, labels: np.ndarray) -> None:
        """Record that ``positions`` now hold ``keys``; ``labels`` as they are after it
        (a fold drops the entries they no longer agree with)."""
        self._recent.update(zip(np.asarray(keys).tolist(), np.asarray(positions).tolist(),
                                strict=True))
        if len(self._recent) > sorted_lookup.fold_share(len(self._keys), MIN_RECENT):
            self.fold(labels)

    def fold(self, labels: np.ndarray) -> None:
        """Merge the recent keys into the arrays (those ``labels`` no longer agree with
        left out); every ``STALE_CHECK_FOLDS`` folds, drop the arrays' stale entries if
        they outnumber the live ones."""
        recent, self._recent = self._recent, {}
        keys = np.fromiter(recent, dtype=np.int64, count=len(recent))
        positions = np.fromiter(recent.values(), dtype=np.int64, count=len(recent))
        live = labels[positions] == keys
        self._keys, self._positions = sorted_lookup.merged(
            self._keys, self._positions, keys[live], positions[live])
        self._folds += 1
        if self._folds % STALE_CHECK_FOLDS == 0:
            held = labels[self._positions] == self._keys  # (keeps the order)
            if 2 * np.count_nonzero(held) < len(held):
                self._keys, self._positions = self._keys[held], self._positions[held]
