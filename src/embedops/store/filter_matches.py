"""The row keys a filter matches, kept per collection until the collection changes.

A filter on a payload field that has no payload index makes SQLite read every point's
JSON: ~1 s at 1M points. A selective filtered search needs the matching keys, and
planning a filtered search needs their count; both were read from SQLite again for every
query, so a filter repeated between two writes (one tenant's, one source's queries)
cost that second a query. Here the keys of each filter are kept with the change
sequence they were read at, and serve every search at that sequence; a write moves the
collection's sequence on and the next search reads them again.

The keys of the filters whose matches the search scores itself or keeps its graph search
within are kept (the selective plan's, a broad filter's searched again, and exact
search's: small collections, a graph still loading), those of one filter up to a quarter
of ``max_keys``. All of them together hold at most ``max_keys``
keys (8 bytes each), each filter counted ``ENTRY_KEYS`` keys more for what it holds
besides (its SQL, its parameters, the array): the least recently used dropped first.
Safe from any number of threads.

A search's catalog row can trail a write that committed meanwhile, so the keys it gets
may be a write old: the search reads the rows of the points it returns under the filter
again (``Searcher._checked_hits``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

MAX_KEYS = 4_000_000  # keys held over all filters: 32 MB
ENTRY_KEYS = 128  # what a filter holds besides its keys, counted as keys (~1 KB)
Filter = tuple[int, str, str]  # collection, compiled SQL, its parameters as JSON


def filter_key(cid: int, where: tuple[str, list[Any]]) -> Filter:
    """A compiled filter of a collection as a key (what the caches here are kept by)."""
    return cid, where[0], json.dumps(where[1])


class FilterMatches:
    """Matching row keys per (collection, filter), valid at one change sequence."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._held: OrderedDict[Filter, tuple[int, np.ndarray]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, cid: int, seq: int, where: tuple[str, list[Any]]) -> np.ndarray | None:
        """The keys held for the filter at change sequence ``seq``, if any (read only)."""
        key = filter_key(cid, where)
        with self._lock:
            held = self._held.get(key)
            if held is None or held[0] != seq:
                return None
            self._held.move_to_end(key)
            return held[1]

    def keeps(self, count: int) -> bool:
        """Whether the keys of a filter matching ``count`` points would be kept."""
        return count <= self.max_keys // 4

    def put(self, cid: int, seq: int, where: tuple[str, list[Any]],
            keys: np.ndarray) -> None:
        """Keep ``keys``, the filter's matches at ``seq`` (replacing those of an older
        sequence), unless they are more than a quarter of ``max_keys``."""
        if not self.keeps(len(keys)):
            return
        key = filter_key(cid, where)
        keys.setflags(write=False)  # (shared by the searches that read it)
        with self._lock:
            old = self._held.pop(key, None)
            if old is not None:
                if old[0] > seq:  # (a search that read an older catalog row: keep the newer)
                    self._held[key] = old
                    return
                self._total -= len(old[1]) + ENTRY_KEYS
            self._held[key] = (seq, keys)
            self._total += len(keys) + ENTRY_KEYS
            while self._total > self.max_keys:
                _, (_, dropped) = self._held.popitem(last=False)
                self._total -= len(dropped) + ENTRY_KEYS

    @property
    def held_keys(self) -> int:
        """Keys held over all filters, each filter counted ``ENTRY_KEYS`` more."""
        return self._total
