"""The graph nodes a filter's matches stand on, kept while the index does not change.

A search among a filter's matches (``HnswIndex.search_among``) looks up the graph
position of every match (a sorted lookup: ~1.5 ms for 10,000 matches at 1M nodes), sets
apart the pending ones, and copies the codes of the nodes the others stand on out of the
graph (``flat_codes``). The filter's keys are kept per change sequence
(``filter_matches``): every search of the filter at that sequence brings the same array.
So all of that is kept here, by the array's identity and the index's version (which every
insert, removal and merge moves on), and serves every such search until either changes:
a repeated filter then costs the scan of its codes alone. A broad filter's matches are
kept the same way as a bitmap of their nodes (``HnswIndex.search_within``), which a
graph search is kept within.

A few entries are kept, least recently used dropped first, within ``MAX_BYTES`` of codes
and keys (counted in the index's resident bytes); a larger one is not kept. Safe from any
number of threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from embedops.store.flat_codes import NodeCodes
from embedops.store.hnsw_graph import Restriction

MAX_ENTRIES = 8
MAX_BYTES = 64 << 20  # 64 MB: the codes of 170,000 int8 nodes of 384 dimensions (a filter
# matching 1M points of 10M holds ~10 MB as a bitmap: its keys, mask and bits)
SET_ENTRY_BYTES = 64  # a Python int in a set: the object and its share of the table


@dataclass
class MatchNodes:
    """What a search among ``keys`` needs, as of the index's ``version``: which of them
    are pending a merge (``waiting``, a mask), the graph nodes the others stand on, and,
    when some stand on shared nodes, the set of those keys (``shared``: a shared node
    stands only for its members among them; None when none does).

    The nodes come in one of two forms, by what the entry was made for (``restricted``):
    their codes copied out of the graph to be scanned (``nodes``: a selective filter's
    few matches), or a bitmap that keeps a graph search within them (``within``: a
    broad filter's many). Either is None when all the keys are pending."""

    keys: np.ndarray
    version: int
    waiting: np.ndarray
    nodes: NodeCodes | None
    shared: set[int] | None
    restricted: bool = False
    within: Restriction | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held: the keys (which this keeps alive), the mask, the codes or the
        bitmap, and about ``SET_ENTRY_BYTES`` a key in ``shared``."""
        return (self.keys.nbytes + self.waiting.nbytes
                + (self.nodes.nbytes if self.nodes is not None else 0)
                + (self.within.nbytes if self.within is not None else 0)
                + SET_ENTRY_BYTES * len(self.shared or ()))


class MatchNodesCache:
    """``MatchNodes`` by the identity of their keys array, for one index."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._held: OrderedDict[int, MatchNodes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def holds(self, entry: MatchNodes) -> bool:
        """Whether ``entry`` is kept now."""
        with self._lock:
            return self._held.get(id(entry.keys)) is entry

    def get(self, keys: np.ndarray, version: int, restricted: bool = False
            ) -> MatchNodes | None:
        """The entry made for this very ``keys`` array at ``version``, in the form asked
        for (``restricted``), if kept. Entries of an older version are dropped (the
        version only moves on)."""
        with self._lock:
            self._drop_older(version)
            held = self._held.get(id(keys))
            if held is None or held.keys is not keys or held.restricted != restricted:
                return None
            self._held.move_to_end(id(keys))
            return held

    def put(self, entry: MatchNodes) -> None:
        """Keep ``entry`` (replacing one for the same array), unless it is too large."""
        size = entry.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            self._drop_older(entry.version)
            old = self._held.pop(id(entry.keys), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._held[id(entry.keys)] = entry
            self._bytes += size
            while self._bytes > self.max_bytes or len(self._held) > MAX_ENTRIES:
                _, dropped = self._held.popitem(last=False)
                self._bytes -= dropped.nbytes

    def _drop_older(self, version: int) -> None:
        for key in [key for key, held in self._held.items() if held.version != version]:
            self._bytes -= self._held.pop(key).nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of codes, keys, masks and sets kept."""
        return self._bytes
