"""Which graph position holds exactly this vector? A 64-bit fingerprint per node.

Points with identical vectors share one graph node (``hnsw_index``), so every insert
first asks whether some node already holds each new row. A top-1 graph search answered
that at a cost of about a fifth of the insert itself (~50 µs a row at 200k nodes), and
missed: at search depth 16 it found an existing row's own node for 92% of rows on
clustered vectors, so a repeated vector could still get nodes of its own. A fingerprint
answers it exactly, for ~1 µs a row.

A fingerprint is a hash of a row's bytes as the graph stores them (float32 values; int8
codes and float16 values widened to float32 first, so a row's fingerprint is the same
whether it is computed from the codes written or read back from the graph). Equal rows
have equal fingerprints; unequal rows almost never do, and the caller compares the
stored row with the new one before sharing a node, so a collision costs one extra node,
never a wrong answer.

Layout: sorted fingerprints with their positions (16 bytes a node), plus a dictionary of
the fingerprints added since the last sort; the dictionary is merged into the sorted
arrays when it outgrows a 64th of them (``sorted_lookup``). Removed positions are not
taken out: the caller checks that a position found is still alive. When a fingerprint is
added again (a vector removed and written anew) the newest position wins.
"""

from __future__ import annotations

import numpy as np

from embedops.store import sorted_lookup

_MULTIPLIERS = np.random.default_rng(0x5EED).integers(
    1, 1 << 63, size=4096, dtype=np.uint64) | np.uint64(1)  # odd: no word is lost
MIN_RECENT = 4096  # the dictionary is folded in no earlier than this


def of(rows: np.ndarray) -> np.ndarray:
    """One uint64 fingerprint per row of ``rows`` (float32 values, shape (n, dim))."""
    rows = np.asarray(rows, dtype=np.float32) + np.float32(0.0)  # -0.0 -> 0.0: equal
    if rows.shape[1] % 2:  # values, equal bytes; an odd row gets a zero to fill a word
        rows = np.concatenate([rows, np.zeros((len(rows), 1), dtype=np.float32)], axis=1)
    words = np.ascontiguousarray(rows).view(np.uint64)  # two values a word
    if words.shape[1] > len(_MULTIPLIERS):
        raise ValueError(f"rows of at most {2 * len(_MULTIPLIERS)} values")
    # the sum of word x odd multiplier, modulo 2^64 (integer products wrap): rows that
    # differ in one word always differ here (an odd number is invertible modulo 2^64).
    # (A product with the multipliers, not the words widened one value at a time:
    # 30x faster, ~12 ms for 65,536 rows of 384.)
    return words @ _MULTIPLIERS[:words.shape[1]]


class Fingerprints:
    """Fingerprint -> newest graph position holding a row with that fingerprint."""

    def __init__(self, prints: np.ndarray | None = None,
                 positions: np.ndarray | None = None) -> None:
        """Empty, or holding ``prints`` of ``positions`` (sorted here once)."""
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._positions = np.zeros(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        if prints is not None and positions is not None and len(prints):
            self._merge(np.asarray(prints, dtype=np.uint64),
                        np.asarray(positions, dtype=np.int64))

    def add(self, prints: np.ndarray, positions: np.ndarray) -> None:
        """Record that ``positions`` (ascending) hold rows with ``prints``."""
        self._recent.update(zip(prints.tolist(), positions.tolist(), strict=True))
        if len(self._recent) > sorted_lookup.fold_share(len(self._sorted), MIN_RECENT):
            self._fold()

    def find(self, prints: np.ndarray) -> np.ndarray:
        """Per fingerprint: the newest position recorded with it, else -1."""
        return sorted_lookup.find(self._sorted, self._positions, self._recent, prints)

    def _fold(self) -> None:
        prints = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        positions = np.fromiter(self._recent.values(), dtype=np.int64, count=len(prints))
        self._recent = {}
        self._sorted, self._positions = sorted_lookup.merged(
            self._sorted, self._positions, prints, positions)

    def _merge(self, prints: np.ndarray, positions: np.ndarray) -> None:
        prints = np.concatenate([self._sorted, prints])
        positions = np.concatenate([self._positions, positions])
        order = np.lexsort((positions, prints))  # by print, then position: newest last
        self._sorted, self._positions = prints[order], positions[order]

    def pairs(self) -> np.ndarray:
        """Every (fingerprint, position) as uint64 pairs sorted by fingerprint, then
        position: what ``from_pairs`` takes back (a checkpoint's ``.prints.npy``)."""
        if self._recent:
            self._fold()
        return np.stack([self._sorted, self._positions.astype(np.uint64)], axis=1)

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, size: int) -> Fingerprints | None:
        """The table ``pairs()`` gave, or ``None`` if ``pairs`` is not such an array for a
        graph of ``size`` positions (a caller then makes the prints again)."""
        if (pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype != np.uint64
                or (len(pairs) and int(pairs[:, 1].max()) >= size)
                or np.any(pairs[1:, 0] < pairs[:-1, 0])):
            return None
        table = cls()
        table._sorted = np.ascontiguousarray(pairs[:, 0])
        table._positions = pairs[:, 1].astype(np.int64)
        return table
