"""Ids and payloads of recently returned points, held in memory for the next searches.

A search ends by reading the id and payload of each point it returns. From SQLite that
is one statement a query (~15 µs on its own, ~45 µs inside a search, where it and the
graph search evict each other's data from the CPU caches) and two hand-overs of the
interpreter lock, which stop two searching threads from using two cores. Searches keep
returning the same points (popular documents, repeated queries), so the store keeps
``rowkey -> (rowkey, id, payload text)`` for the points it returned, per collection.

Correctness rests on the collection's change sequence (``CollectionRow.seq``): every
commit that adds, replaces, deletes or patches points of a collection raises it, and a
search always plans with a catalog row at least as new as the commits it can see. A
collection's entries are valid for exactly one sequence: a search planned at a newer
one starts the collection's entries afresh, one planned at an older one (a thread that
looked the row up just before a commit) neither reads nor fills them. Rows read from
SQLite after the row was looked up are at least that new, so an entry never holds
older data than its sequence promises. Row keys are never reused (``AUTOINCREMENT``),
nor are collection ids, so a key cannot come to name another point.

The cache is bounded by an estimate of its bytes (``budget_bytes``); when an insert
would pass it, every collection's entries are dropped and filling starts again (a
search hit by that pays one SQLite read, as without the cache). ``budget_bytes=0``
turns it off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

HIT_CACHE_BYTES = 64 << 20
# Per entry beyond the id and payload text: the dictionary slot (~42 B), the row key's
# int object (28 B), the tuple (64 B) and the two str headers (2 x 49 B), rounded up.
ENTRY_OVERHEAD_BYTES = 240

Row = Sequence[Any]  # (rowkey, id, payload text)


class _Entries:
    """One collection's entries: valid at change sequence ``seq``."""

    __slots__ = ("bytes", "rows", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.rows: dict[int, Row] = {}
        self.bytes = 0


class HitCache:
    """``rowkey -> (rowkey, id, payload text)`` per collection and change sequence."""

    def __init__(self, budget_bytes: int = HIT_CACHE_BYTES) -> None:
        self.budget_bytes = max(0, int(budget_bytes))
        self._lock = threading.Lock()  # (fills and drops; lookups read without it)
        self._by_cid: dict[int, _Entries] = {}
        self.hits = 0
        self.misses = 0

    @property
    def bytes(self) -> int:
        """Estimated bytes held, all collections together."""
        return sum(entries.bytes for entries in list(self._by_cid.values()))

    def rows(self, cid: int, seq: int) -> dict[int, Row] | None:
        """The collection's entries if they are valid at ``seq`` (else ``None``: read
        everything from SQLite). The dictionary must only be read."""
        entries = self._by_cid.get(cid)
        if entries is None or entries.seq != seq:
            return None
        return entries.rows

    def count(self, hits: int, misses: int) -> None:
        """Record a lookup's outcome (approximate under concurrent searches)."""
        self.hits += hits
        self.misses += misses

    def fill(self, cid: int, seq: int, rows: Iterable[Row]) -> None:
        """Keep ``rows``, read from SQLite for a search planned at ``seq``."""
        if not self.budget_bytes:
            return
        with self._lock:
            entries = self._by_cid.get(cid)
            if entries is not None and entries.seq > seq:
                return  # a newer search has started this collection's entries afresh
            if entries is None or entries.seq < seq:
                entries = self._by_cid[cid] = _Entries(seq)
            fresh = [r for r in rows if r[0] not in entries.rows]
            size = sum(ENTRY_OVERHEAD_BYTES + len(r[1]) + len(r[2]) for r in fresh)
            if size > self.budget_bytes:
                return
            if self.bytes + size > self.budget_bytes:  # full: start again
                entries = _Entries(seq)
                self._by_cid = {cid: entries}
            for r in fresh:
                entries.rows[r[0]] = r
            entries.bytes += size

    def drop(self, cid: int) -> None:
        """Forget a collection's entries (it was deleted)."""
        with self._lock:
            self._by_cid.pop(cid, None)
