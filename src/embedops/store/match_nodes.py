"""The graph nodes a filter's matches stand on, kept while the index does not change.

A search among a filter's matches (``HnswIndex.search_among``) looks up the graph
position of every match (a sorted lookup: ~1.5 ms for 10,000 matches at 1M nodes), sets
apart the pending ones, and copies the codes of the nodes the others stand on out of the
graph (``flat_codes``). The filter's keys are kept per change sequence
(``filter_matches``): every search of the filter at that sequence brings the same array.
So all of that is kept here, by the array's identity and the index's version (which every
insert, removal and merge moves on), and serves every such search until either changes:
a repeated filter then costs the scan of its codes alone.

A few entries are kept, least recently used dropped first, within ``MAX_BYTES`` of codes
and keys (counted in the index's resident bytes); a larger one is not kept. Safe from any
number of threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from embedops.store.flat_codes import NodeCodes

MAX_ENTRIES = 8
MAX_BYTES = 64 << 20  # 64 MB: the codes of 170,000 int8 nodes of 384 dimensions


@dataclass
class MatchNodes:
    """What a search among ``keys`` needs, as of the index's ``version``: which of them
    are pending a merge (``waiting``, a mask), the graph nodes the others stand on
    (``nodes``; None when all are pending), and, when some stand on shared nodes, the set
    of the keys in the graph (a shared node stands only for its members among them)."""

    keys: np.ndarray
    version: int
    waiting: np.ndarray
    nodes: NodeCodes | None
    shared: bool
    _in_graph: set[int] | None = field(default=None, repr=False)

    @property
    def in_graph(self) -> set[int]:
        """The keys that are not pending, as a set (made on first use)."""
        if self._in_graph is None:
            self._in_graph = set(self.keys[~self.waiting].tolist())
        return self._in_graph

    @property
    def nbytes(self) -> int:
        return self.waiting.nbytes + (self.nodes.nbytes if self.nodes is not None else 0)


class MatchNodesCache:
    """``MatchNodes`` by the identity of their keys array, for one index."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._held: OrderedDict[int, MatchNodes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, keys: np.ndarray, version: int) -> MatchNodes | None:
        """The entry made for this very ``keys`` array at ``version``, if kept."""
        with self._lock:
            held = self._held.get(id(keys))
            if held is None or held.keys is not keys or held.version != version:
                return None
            self._held.move_to_end(id(keys))
            return held

    def put(self, entry: MatchNodes) -> None:
        """Keep ``entry`` (replacing one for the same array), unless it is too large."""
        size = entry.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._held.pop(id(entry.keys), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._held[id(entry.keys)] = entry
            self._bytes += size
            while self._bytes > self.max_bytes or len(self._held) > MAX_ENTRIES:
                _, dropped = self._held.popitem(last=False)
                self._bytes -= dropped.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of codes, keys and masks kept."""
        return self._bytes
