"""Which graph position holds a node key? Sorted arrays, checked against the labels.

A graph's labels map each position to its node's key (``hnsw_graph``); writes need the
reverse, to find the nodes of the keys they remove, rename or read back. A Python
dictionary did it at ~106 bytes a node (its table and two int objects: 106 MB at 1M
nodes) and took 0.2-0.3 s to build at 1M nodes, all of it holding the interpreter, up
to ~0.1 s in one go when the dictionary resized.

Here: the keys sorted, with their positions beside them (16 bytes a node), plus a
dictionary of the keys added since the last sort, folded in when it outgrows an eighth
of the sorted arrays (as ``fingerprints`` does). Building the arrays is numpy's sort,
which lets go of the interpreter: 13-130 ms at 1M nodes, least when the keys come in
ascending runs, as row keys do.

Removals and renames change only the labels. A position found is the key's only while
the labels still give that key at that position (``find`` checks), so the entries of
removed and renamed nodes need no removal here; a fold drops them.
"""

from __future__ import annotations

import numpy as np

from embedops.store import sorted_lookup

MIN_RECENT = 4096  # keys added since the last sort, at least, before they are folded in
BYTES_PER_KEY = 16  # a key and its position in the sorted arrays


class KeyPositions:
    """Key -> position of a graph's live nodes, given its labels (module docstring)."""

    def __init__(self, keys: np.ndarray, positions: np.ndarray) -> None:
        """Holding ``keys`` at ``positions`` (distinct keys; sorted here)."""
        self._keys = np.zeros(0, dtype=np.int64)
        self._positions = np.zeros(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        self._sort(np.asarray(keys, dtype=np.int64), np.asarray(positions, dtype=np.int64))

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
        """Bytes of the sorted arrays (the dictionary of recent keys is kept small)."""
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
        if len(self._recent) > max(MIN_RECENT, len(self._keys) // 8):
            self.fold(labels)

    def fold(self, labels: np.ndarray) -> None:
        """Sort the recent keys in, dropping every entry ``labels`` disagree with."""
        recent = self._recent
        keys = np.concatenate([self._keys, np.fromiter(recent, dtype=np.int64,
                                                       count=len(recent))])
        positions = np.concatenate([self._positions, np.fromiter(
            recent.values(), dtype=np.int64, count=len(recent))])
        live = labels[positions] == keys
        self._recent = {}
        self._sort(keys[live], positions[live])

    def _sort(self, keys: np.ndarray, positions: np.ndarray) -> None:
        # (a stable sort is a merge of runs: ~13 ms at 1M keys in a few ascending runs)
        order = np.argsort(keys, kind="stable")
        keys, positions = keys[order], positions[order]
        if len(keys) > 1 and np.any(same := keys[1:] == keys[:-1]):  # (a key renamed
            keep = np.concatenate([[True], ~same])  # away and back: one entry twice)
            keys, positions = keys[keep], positions[keep]
        self._keys, self._positions = keys, positions
