"""The HNSW graph under the embedded store's index: faiss, keyed by int64 node keys.

faiss's HNSW graph knows nodes only by position (the order they were added) and cannot
remove one. This wrapper gives it what the store needs:

* keys: position -> key (``labels``) and key -> position (``key_positions``, sorted
  arrays checked against the labels); a node can be renamed (``rename``), which only
  changes the mapping;
* removal as a tombstone: the node stays in the graph and keeps routing searches (as in
  every HNSW library that removes lazily), its bit in the ``alive`` bitmap is cleared and
  searches pass the bitmap to faiss as an ``IDSelectorBitmap``, so a removed node is
  never returned; background compaction rebuilds the graph without them;
* exact lookup (``find``): which node holds exactly a given row, by a fingerprint per
  node (``fingerprints``), not by a search;
* scalar types: float32 vectors (``IndexHNSWFlat``), float16 (``QT_fp16``) and the
  store's own int8 codes stored as they are (``QT_8bit_direct_signed``), so an int8
  graph is searched on exactly the codes the store computed.

Why faiss: on the store's 2-core x86_64 development machine, at ef 64 on 50,000 × 384
vectors, one query took 80 µs in faiss against 146 µs in usearch 2.26, and two threads
searching together reached 1.65× one thread in faiss (the search releases the
interpreter lock) against 0.8× in usearch (docs/benchmarks-store.md). A search's depth
is a per-call parameter, so concurrent searches need no lock.

Unrestricted searches of float32 and int8 graphs run in the project's own compiled
search over faiss's arrays (``graph_search``; a view of them made at the first search
after each insert, which may move them); the rest go through faiss, as below.

A single query faiss searches runs with the calling thread's OpenMP team set to one thread:
faiss opens a parallel region even for one query, and the idle member of a two-thread
team spins on the core that another searching thread needs. The setting is changed only
when a thread switches between single queries and calls that spread over the cores (a
batch, an insert, a reconstruction), which get the thread's own setting back: every
faiss call lets go of the interpreter lock, so reading, setting and restoring it around
each query handed the lock to another searching thread three extra times a query.

After each insert the graph asks the kernel for huge pages under faiss's large arrays,
and has a grown copy's arrays collapsed into them off the index lock (``huge_pages``):
1.14x the single-search rate at 1M float32 nodes, 1.17x at 300k int8 ones.

Checkpoints are faiss's own index file (``faiss.write_index``) plus the labels as a
NumPy ``.npy`` array (removed positions hold -1). A large graph file is mapped rather
than read (``mapped_files``): searches start at once and processes share its pages; the
first insert then reads an owned copy (off the index lock when the store can,
``grown_copy``), since faiss cannot grow a mapped graph.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedops.store import fingerprints, graph_search
from embedops.store.fingerprints import Fingerprints
from embedops.store.flat_codes import NodeCodes, flat_of, scalar_kind
from embedops.store.huge_pages import HugePages
from embedops.store.key_positions import BYTES_PER_KEY, KeyPositions
from embedops.store.mapped_files import MappedFile, open_for_mapping

log = logging.getLogger(__name__)

SCALAR_BYTES = {"float32": 4, "float16": 2, "int8": 1}
# Bytes per node beyond the vector and the links: the level, the link offsets, the label,
# the alive bit, the key with its position in the key map and the fingerprint with its
# position.
PRINT_BYTES = 16  # a node's fingerprint and position in the sorted table
NODE_OVERHEAD_BYTES = 4 + 8 + 8 + 1 + BYTES_PER_KEY + PRINT_BYTES
WRITE_BLOCK_BYTES = 1 << 20  # a checkpoint's graph reaches its file this much at a time
PRINT_BLOCK = 1 << 16  # rows read back at a time to fingerprint a loaded graph
_PARAMS_CACHE = 64  # search parameter objects kept per graph (one per search depth)
# A graph of this many nodes or more that would outgrow faiss's arrays grows on a copy
# (``copy_due``); below, reallocating in place copies ~75 MB or less (~30 ms).
COPY_MIN_NODES = 50_000
# The least a std::vector grows by when it reallocates (libstdc++ and libc++ double its
# capacity, MSVC's library takes 1.5x): room counted on after a reallocation.
GROWTH = 1.5
# Until the key -> position map is built (0.01-0.14 s at 1M nodes), a removal or a rename
# finds its keys by scanning the labels: one comparison pass a key (~0.25 ms at 1M) up to
# this many keys, else a sorted lookup (``np.isin``, ~12 ms at 1M whatever the count).
# The merger builds the map off the index lock meanwhile (``KeyMapJob``); a lookup that
# needs it first (``positions_of``: reading stored rows back) builds it there and then.
SCAN_EACH_MAX = 16
KEY_MAP_TRIES = 3  # maps built off the lock and dropped before one is built under it


class _OpenMPTeam(threading.local):
    """The calling thread's OpenMP setting as this module left it (module docstring)."""

    size = 0  # the team size this module last set for the thread (0: none yet)
    own = 0  # the thread's own setting before that
    cap = 0  # at most this many threads in calls that spread over the cores (0: own)


_team = _OpenMPTeam()


def _set_team(size: int) -> None:
    if _team.size != size:
        faiss.omp_set_num_threads(size)
        _team.size = size


def _one_thread() -> None:
    """Before a single query: the calling thread's team at one thread."""
    if _team.size != 1:
        if not _team.own:
            _team.own = faiss.omp_get_max_threads()
        _set_team(1)


def _all_threads() -> None:
    """Before a faiss call that spreads over the cores: the thread's own setting back,
    or its cap (``cap_team``) if lower."""
    if not _team.own:
        if not _team.cap:
            return  # (never changed: the thread's own setting stands)
        _team.own = faiss.omp_get_max_threads()
    _set_team(min(_team.own, _team.cap) if _team.cap else _team.own)


def cap_team(threads: int) -> None:
    """Let the calling thread's inserts, batches and reconstructions use at most
    ``threads`` OpenMP threads (0: its own setting). Background work that runs beside
    searches caps itself below the core count: a team over every core took the core of
    the searching thread, and the spinning of a team member that waits took more
    (``bench/ann.py``'s deletes beside searches ran at 16-22k/s with every faiss call
    on a team of two, 22-27k/s with one)."""
    _team.cap = threads


def _batch_team(rows: int) -> int:
    """Threads for a batch of ``rows`` queries in the compiled search: as many as faiss
    would spread it over (the thread's OpenMP setting, or its cap, ``cap_team``)."""
    own = _team.own or faiss.omp_get_max_threads()
    return max(1, min(rows, own, _team.cap or own))


def _searched(index: faiss.Index, rows: np.ndarray, k: int,
              params: faiss.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray]:
    """faiss's top-``k`` row positions and distances per query of ``rows`` (float32,
    contiguous, checked by the caller), the calling thread's OpenMP team set first: one
    thread for a single query, its own setting for a batch (module docstring). faiss's
    own Python wrapper does the same after checks the callers make."""
    distances = np.empty((len(rows), k), dtype=np.float32)
    found = np.empty((len(rows), k), dtype=np.int64)
    if len(rows) == 1:  # one query: no OpenMP team for it
        _one_thread()
    else:
        _all_threads()
    index.search_c(len(rows), faiss.swig_ptr(rows), k, faiss.swig_ptr(distances),
                   faiss.swig_ptr(found), params)
    return found, distances


class _RowOutput(threading.local):
    """The calling thread's output arrays for single-row searches (``HnswGraph.search_row``)
    and faiss's pointers to them, made again when ``k`` changes: a search's results
    leave them as lists before the thread's next search. Making the two arrays and
    faiss's pointers to them for every search cost ~9k of a single search's ~300k CPU
    instructions.

    ``slots`` is ``(k, distances, found, distances_ptr, found_ptr)``, replaced as one
    tuple: a pointer does not keep its array alive, so an exception while new arrays are
    made (a ``MemoryError`` at a large ``k``, a ``KeyboardInterrupt``) must leave the
    old five together, never a pointer to a freed array or arrays smaller than ``k``."""

    slots: tuple[int, np.ndarray, np.ndarray, Any, Any] | tuple[int, None, None, None, None] \
        = (0, None, None, None, None)


_row_output = _RowOutput()


ROW_OUTPUT_KEPT_MAX = 1024  # a larger k's arrays are made for its search alone


def _row_output_for(k: int) -> tuple[int, np.ndarray, np.ndarray, Any, Any]:
    slots = _row_output.slots
    if slots[0] != k:
        distances = np.empty((1, k), dtype=np.float32)
        found = np.empty((1, k), dtype=np.int64)
        slots = (k, distances, found, faiss.swig_ptr(distances), faiss.swig_ptr(found))
        if k <= ROW_OUTPUT_KEPT_MAX:  # (one search at a huge k keeps no memory after)
            _row_output.slots = slots
    return slots  # type: ignore[return-value]


def _search_parameters(ef: int, selector: faiss.IDSelector | None
                       ) -> faiss.SearchParametersHNSW:
    """faiss's parameters for a search at depth ``ef`` that returns only the nodes
    ``selector`` selects (None: any node)."""
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef
    if selector is not None:
        params.sel = selector
        params.referenced_selector = selector  # (kept alive with the parameters)
    return params


class Restriction:
    """Graph nodes a search is kept within (a broad filter's matches): a bitmap of their
    positions, one bit a node (faiss's ``IDSelectorBitmap`` reads it as it searches), and
    the search parameters that pass it, one per search depth. The graph's other nodes
    still route the search, as removed ones do."""

    def __init__(self, bitmap: np.ndarray, count: int) -> None:
        self.bitmap, self.count = bitmap, count  # (count: the nodes it holds)
        self._selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        self._params: dict[int, faiss.SearchParametersHNSW] = {}

    def params(self, ef: int) -> faiss.SearchParametersHNSW:
        """faiss's parameters for a search at depth ``ef`` kept within these nodes."""
        params = self._params.get(ef)
        if params is None:
            params = _search_parameters(ef, self._selector)
            if len(self._params) >= _PARAMS_CACHE:
                self._params = {}
            self._params[ef] = params
        return params

    @property
    def nbytes(self) -> int:
        return int(self.bitmap.nbytes)


def graph_metric(metric: str) -> int:
    """faiss's metric for a collection's (cosine vectors are stored unit-normalised)."""
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def new_faiss_graph(dim: int, metric: str, dtype: str, connectivity: int,
                    expansion_add: int) -> faiss.IndexHNSW:
    """An empty faiss HNSW index for ``dim``-dimensional vectors of ``dtype``."""
    fmetric = graph_metric(metric)
    kind = scalar_kind(dtype)
    if kind is None:
        graph = faiss.IndexHNSWFlat(dim, connectivity, fmetric)
    else:
        graph = faiss.IndexHNSWSQ(dim, kind, connectivity, fmetric)
        graph.train(np.zeros((1, dim), dtype=np.float32))  # (these quantizers learn nothing)
    graph.hnsw.efConstruction = expansion_add
    return graph


@dataclass
class KeyMapJob:
    """The key -> position map of a graph, built off the index lock from its labels as
    they stood (``HnswGraph.key_map_job``) and taken with ``HnswGraph.take_key_map``,
    which adds the nodes inserted meanwhile, unless a node was renamed meanwhile."""

    labels: np.ndarray
    size: int
    renames: int
    built: KeyPositions | None = None

    def build(self) -> None:
        """Make the map (numpy's sort: it lets go of the interpreter)."""
        self.built = KeyPositions.from_labels(self.labels[:self.size])


class HnswGraph:
    """A faiss HNSW graph over int64 keys with renames and tombstones (module docstring).

    Not safe for a write (``add``, ``remove``, ``rename``) concurrent with anything else;
    any number of ``search``/``get`` calls may run at once (the store's index lock
    arranges both).
    """

    def __init__(self, dim: int, metric: str, dtype: str, connectivity: int,
                 expansion_add: int, graph: faiss.IndexHNSW | None = None,
                 labels: np.ndarray | None = None) -> None:
        if dtype not in SCALAR_BYTES:
            raise ValueError(f"unknown dtype {dtype!r}")
        self.dim, self.metric, self.dtype = dim, metric, dtype
        self.graph = graph if graph is not None else new_faiss_graph(
            dim, metric, dtype, connectivity, expansion_add)
        count = int(self.graph.ntotal)
        self._size = count  # (faiss's ``ntotal``, kept here: reading it goes through SWIG)
        # Labels of positions, -1 for removed ones; always at least one slot longer than
        # the graph, so that faiss's padding position -1 maps to the last slot's -1
        # (``search`` maps positions to keys with no check for padding).
        self._labels = np.full(max(count + 1, 1024), -1, dtype=np.int64)
        if labels is not None:
            self._labels[:count] = labels
        alive = self._labels[:count] >= 0
        self._alive = np.zeros(len(self._labels) // 8 + 1, dtype=np.uint8)
        self._alive[:(count + 7) // 8] = np.packbits(alive, bitorder="little")
        # key -> position, built off the index lock (``KeyMapJob``) or on first use by a
        # lookup (``positions_of``): a search needs only the labels, so opening a store
        # and answering its first search skips building it (0.01-0.14 s at 1M nodes)
        self._positions: KeyPositions | None = None if count else KeyPositions.from_labels(
            self._labels[:0])
        self._renames = 0  # renames so far (``KeyMapJob``)
        self._key_map_misses = 0  # maps built off the lock and dropped (``take_key_map``)
        # fingerprint -> position, made on first use too (``find``: the first write after
        # a load), from a checkpoint's prints file if it has one (``load``), else from the
        # rows read back (0.14-0.34 s at 200k float32 nodes, with the index lock held)
        self._prints: Fingerprints | None = None
        self._prints_file: Path | None = None
        self.removed = count - int(np.count_nonzero(alive))  # tombstones in the graph
        # A graph read from a file holds faiss's arrays at their exact size: its first
        # insert reallocates and copies all of them (0.43 s at 1M int8 nodes), which the
        # store makes on a copy off the index lock (``grown_copy``, ``adopt``).
        self.exact_size = False
        # Nodes and links faiss's arrays hold at least before an insert reallocates them
        # (``copy_due``): the sizes at first, as a graph read or cloned holds them.
        self._room = (count, self._links())
        self._link_bound = 3 * int(self.graph.hnsw.nb_neighbors(1))  # links a new node
        # takes, at most but for the rare node above level 1: 2M at level 0, M at level 1
        # Held while faiss's arrays change (``add``) or are copied (``grown_copy``): a
        # copy is made without the index lock, beside searches and deferred writes.
        self._arrays = threading.Lock()
        # the checkpoint file ``graph`` maps, if it maps one (``load``; ``mapped_files``)
        self._mapping: MappedFile | None = None
        self._params: dict[int, faiss.SearchParametersHNSW] = {}
        self._selector: faiss.IDSelectorBitmap | None = None
        # the compiled single-query search's view of faiss's arrays (``graph_search``):
        # made at the first single search after each insert (None: not made yet, False:
        # the graph is not one it searches)
        self._view: Any = None
        # huge pages asked for under faiss's large arrays after each insert
        # (``huge_pages``), and under the arrays of the last copy grown (``grown_copy``)
        self._huge = HugePages()
        self._copy_huge = (0, self._huge)  # (id of the last copy grown, its advice)

    def __len__(self) -> int:
        """Live nodes."""
        return self._size - self.removed

    def positions_of(self, keys: np.ndarray) -> np.ndarray:
        """Per key: the position of its live node, else -1 (builds the key map if it is
        not built yet)."""
        return self._key_map().find(keys, self._labels)

    def _key_map(self) -> KeyPositions:
        if self._positions is None:
            self._positions = KeyPositions.from_labels(self._labels[:self.size])
        return self._positions

    @property
    def key_map_built(self) -> bool:
        """Is the key -> position map built (else removals scan the labels)?"""
        return self._positions is not None

    @property
    def size(self) -> int:
        """Nodes in the graph, removed ones included."""
        return self._size

    @property
    def mapped(self) -> bool:
        """Does the graph map its checkpoint file (``load``) instead of owning its memory?"""
        return self._mapping is not None

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Per key: does a live node hold it?"""
        keys = np.asarray(keys, dtype=np.int64)
        if self._positions is None:  # (a load checking its shared nodes: see SCAN_EACH_MAX)
            return np.isin(keys, self._labels[:self.size]) & (keys >= 0)  # (-1: removed)
        return self._positions.find(keys, self._labels) >= 0

    def keys(self) -> np.ndarray:
        """The keys of the live nodes, in the order of their positions."""
        labels = self._labels[:self.size]
        return labels[labels >= 0]

    # --- writes ------------------------------------------------------------------------

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Add new nodes ``keys`` (none of them present) holding ``rows`` (float32 for
        float32/float16 graphs, int8 codes for int8 ones)."""
        start, links, exact = self.size, self._links(), self.exact_size
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._view = None  # (faiss's arrays move: even a failed insert may move them)
        with self._arrays:
            if self._mapping is not None:  # (faiss would abort the process: mapped_files)
                self.graph, self._mapping = self.owned_copy(), None
                exact = True
            _all_threads()
            self.graph.add(rows)
            self._advise_huge_pages(self.graph, self._huge, collapse=False)  # (index lock)
        self._record(keys, rows, start)
        if exact:  # (reallocated for certain)
            self._room = self._room_after(start, links)
        else:  # past the room counted on: reallocated or not, only the sizes are sure
            self._room = (max(self._room[0], self.size), max(self._room[1], self._links()))

    def copy_due(self, count: int) -> bool:
        """Would inserting ``count`` nodes reallocate and copy all of faiss's arrays
        with the index lock held? For a graph read from a file (``exact_size``), and for
        one of ``COPY_MIN_NODES`` or more about to outgrow the room its arrays are known
        to hold; the store then inserts them on a copy off the lock (``grown_copy``)."""
        if self.exact_size:
            return True
        nodes, links = self._room
        return self.size >= COPY_MIN_NODES and (
            self.size + count > nodes or self._links() + count * self._link_bound > links)

    def no_copies(self) -> None:
        """Insert in place from now on (a copy failed: out of memory, say)."""
        self.exact_size = False
        self._room = (1 << 62, 1 << 62)

    def _links(self) -> int:
        return int(self.graph.hnsw.neighbors.size())

    def _room_after(self, nodes: int, links: int) -> tuple[int, int]:
        """The room after an insert into arrays held at their exact size, ``nodes`` and
        ``links`` (which reallocated them)."""
        return (max(self.size, int(GROWTH * nodes)), max(self._links(), int(GROWTH * links)))

    def owned_copy(self) -> faiss.IndexHNSW:
        """A copy of the faiss graph in memory of its own, its arrays at their exact
        size: read from the mapped file (a clone would map the same pages), else cloned."""
        if self._mapping is not None:
            return faiss.read_index(self._mapping.name)
        return faiss.clone_index(self.graph)

    def grown_copy(self, rows: np.ndarray) -> faiss.IndexHNSW:
        """A copy of the faiss graph with ``rows`` inserted, this graph left as it is: it
        only reads the graph, so searches may run beside it (writes may not). For a graph
        read from a file (``exact_size``), whose first insert reallocates and copies all
        of faiss's arrays, made off the index lock and taken with ``adopt``; so is the
        insert that would outgrow the arrays (``copy_due``). Holds the graph's own lock,
        not the index lock: only inserts wait for it."""
        with self._arrays:
            copy = self.owned_copy()
            _all_threads()
            copy.add(np.ascontiguousarray(rows, dtype=np.float32))
        # the copy is the caller's alone: collapsed without the graph's lock, which an
        # insert in place (under the index lock) would wait for; the graph's own advice
        # stands until ``adopt`` takes this copy
        advice = HugePages()
        self._advise_huge_pages(copy, advice, collapse=True)
        self._copy_huge = (id(copy), advice)  # (not the copy: a copy dropped is freed)
        return copy

    @staticmethod
    def _advise_huge_pages(graph: faiss.IndexHNSW, advice: HugePages, collapse: bool
                           ) -> None:
        """Ask for huge pages under ``graph``'s vectors (or codes) and links, written
        since ``advice`` last asked (``huge_pages``); with ``collapse``, have the kernel
        collapse them now (a copy of the caller's alone: never under a lock an insert
        or a search waits for). Advice only: whatever fails here is logged, never raised
        (an insert that raised after faiss took its rows would leave the graph's labels
        behind its nodes)."""
        try:
            storage = faiss.downcast_index(graph.storage)
            for name, array in (("vectors", storage.codes), ("links", graph.hnsw.neighbors)):
                if array.is_owned and array.size():
                    address = faiss.rev_swig_ptr(array.data(), 1).ctypes.data
                    advice.advise(name, address, int(array.byte_size()), collapse)
        except Exception as error:  # (advice: see above)
            log.warning("huge pages not asked for under the graph's arrays: %r", error)

    def adopt(self, copy: faiss.IndexHNSW, keys: np.ndarray, rows: np.ndarray
              ) -> faiss.IndexHNSW:
        """Take ``copy`` (``grown_copy(rows)`` of this graph, not added to since) as the
        graph, its new nodes holding ``keys``; returns the graph it replaces, for the
        caller to let go of after its lock (freeing 0.66 GB took ~30 ms)."""
        start, links = self.size, self._links()
        if int(copy.ntotal) != start + len(keys):
            raise ValueError("the graph changed since the copy was made")
        self._view = None
        with self._arrays:
            replaced, self.graph, self._mapping = self.graph, copy, None
            made, advice = self._copy_huge
            # (the advice given this copy's arrays; any other copy's: asked afresh)
            self._huge = advice if made == id(copy) else HugePages()
            self._copy_huge = (0, self._huge)
        self._record(keys, np.ascontiguousarray(rows, dtype=np.float32), start)
        self._room = self._room_after(start, links)  # (a copy holds its arrays exactly)
        return replaced

    def _record(self, keys: np.ndarray, rows: np.ndarray, start: int) -> None:
        """Labels, fingerprints, key map and alive bits of the nodes from ``start`` on,
        just inserted with ``keys`` and ``rows``."""
        self.exact_size = False
        self._view = None  # (faiss's arrays may have moved)
        end = self._size = int(self.graph.ntotal)
        self._grow(end)
        self._labels[start:end] = keys
        if self._prints is not None:  # (else built from the graph when first needed)
            self._prints.add(fingerprints.of(self._as_stored(rows)),
                             np.arange(start, end, dtype=np.int64))
        if self._positions is not None:  # (else built from the labels when first needed)
            self._positions.add(keys, np.arange(start, end, dtype=np.int64), self._labels)
        bits = np.unpackbits(self._alive[start // 8:(end + 7) // 8], bitorder="little")
        bits[start % 8:start % 8 + end - start] = 1
        self._alive[start // 8:(end + 7) // 8] = np.packbits(bits, bitorder="little")

    def _grow(self, count: int) -> None:
        if count < len(self._labels):  # (the last slot stays -1: see __init__)
            return
        capacity = max(count + 1, 2 * len(self._labels))
        labels = np.full(capacity, -1, dtype=np.int64)
        labels[:len(self._labels)] = self._labels
        alive = np.zeros(capacity // 8 + 1, dtype=np.uint8)
        alive[:len(self._alive)] = self._alive
        # searches running now keep the old arrays (and their selector) alive
        self._labels, self._alive = labels, alive
        self._selector = None
        self._view = None
        self._params = {}

    def remove(self, keys: np.ndarray) -> int:
        """Tombstone the present ``keys``; returns how many were present."""
        where = self._live_positions(np.asarray(keys, dtype=np.int64))
        if len(where) == 0:
            return 0
        if self._selector is None:
            self._params = {}  # searches must now pass the bitmap
        self._labels[where] = -1
        np.bitwise_and.at(self._alive, where // 8,
                          np.invert(np.left_shift(1, where % 8).astype(np.uint8)))
        self.removed += len(where)
        return len(where)

    def _live_positions(self, keys: np.ndarray) -> np.ndarray:
        """The positions of the live nodes of ``keys``, each once: from the key map, or
        from the labels while the map is not built (see SCAN_EACH_MAX)."""
        if self._positions is None:
            return self._scan(keys)
        where = np.unique(self._positions.find(keys, self._labels))
        return where[where >= 0]

    def _scan(self, keys: np.ndarray) -> np.ndarray:
        """The positions of the live nodes of ``keys``, found in the labels."""
        labels, keys = self._labels[:self.size], np.unique(keys[keys >= 0])  # (-1: removed)
        if len(keys) > SCAN_EACH_MAX:
            return np.flatnonzero(np.isin(labels, keys))
        found = [np.flatnonzero(labels == key) for key in keys.tolist()]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def key_map_job(self) -> KeyMapJob | None:
        """The key -> position map to build off the index lock, if it is not built
        (call with the index lock, shared at least; then ``KeyMapJob.build`` with no
        lock, then ``take_key_map`` with the lock exclusive)."""
        if self._positions is not None:
            return None
        return KeyMapJob(self._labels, self.size, self._renames)

    def take_key_map(self, job: KeyMapJob) -> bool:
        """Take the map ``job`` built, with the nodes inserted since it started added
        (call with the index lock exclusive). Removals meanwhile need nothing (the map
        checks the labels: ``key_positions``); a rename meanwhile drops it, to be built
        again. After ``KEY_MAP_TRIES`` drops in a row, it builds the map here from the
        labels as they are, with the lock held, as the first write after a load did
        before. Returns whether the map is built now."""
        if self._positions is not None:
            return True
        if job.built is None or job.renames != self._renames or job.size > self.size:
            self._key_map_misses += 1
            if self._key_map_misses >= KEY_MAP_TRIES:
                self._key_map()  # (built from the labels)
            return self._positions is not None
        if self.size > job.size:  # (inserted while it was built)
            added = self._labels[job.size:self.size]
            alive = np.flatnonzero(added >= 0)
            job.built.add(added[alive], alive + job.size, self._labels)
        self._positions = job.built
        return True

    def rename(self, old: int, new: int) -> bool:
        """Give ``old``'s live node the key ``new`` (not held); False if none holds ``old``."""
        found = self._live_positions(np.asarray([old], dtype=np.int64))
        if len(found) == 0:
            return False
        position = int(found[0])
        self._labels[position] = new
        if self._positions is not None:
            self._positions.add(np.asarray([new]), np.asarray([position]), self._labels)
        self._renames += 1
        return True

    # --- reads -------------------------------------------------------------------------

    def find(self, rows: np.ndarray) -> np.ndarray:
        """Per row (as ``add`` takes them): the key of the live node that holds exactly
        that row, else -1."""
        rows = self._as_stored(np.ascontiguousarray(rows, dtype=np.float32))
        found = np.full(len(rows), -1, dtype=np.int64)
        if len(rows) == 0 or len(self) == 0:
            return found
        where = self._fingerprints().find(fingerprints.of(rows))
        hit = np.flatnonzero(where >= 0)
        hit = hit[self._labels[where[hit]] >= 0]  # (a removed node's print stays)
        if len(hit) == 0:
            return found
        held = self._rows_at(where[hit])
        same = hit[np.all(held == rows[hit], axis=1)]  # (a fingerprint collision: no)
        found[same] = self._labels[where[same]]
        return found

    def _as_stored(self, rows: np.ndarray) -> np.ndarray:
        """float32 rows as the graph stores them (float16 graphs round them, by faiss's
        own encoder: numpy's rounding differs from it for ~2% of rows)."""
        if self.dtype == "float16" and len(rows):
            storage = self.graph.storage
            return storage.sa_decode(storage.sa_encode(rows))
        return rows

    def _read_prints_file(self) -> None:
        """The fingerprints from the checkpoint's file ``load`` was given, if it fits."""
        if self._prints is None and self._prints_file is not None:
            try:
                pairs = np.load(self._prints_file, allow_pickle=False)
            except (OSError, ValueError):
                pairs = np.zeros((0, 0), dtype=np.uint64)
            self._prints = Fingerprints.from_pairs(pairs, self.size)
            self._prints_file = None

    def _fingerprints(self) -> Fingerprints:
        self._read_prints_file()
        if self._prints is None:
            alive = np.flatnonzero(self._labels[:self.size] >= 0)
            prints = np.empty(len(alive), dtype=np.uint64)
            for lo in range(0, len(alive), PRINT_BLOCK):
                where = alive[lo:lo + PRINT_BLOCK]
                prints[lo:lo + len(where)] = fingerprints.of(self._rows_at(where))
            self._prints = Fingerprints(prints, alive)
        return self._prints

    def search(self, rows: np.ndarray, k: int, ef: int, within: Restriction | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` node keys and faiss distances (inner products, or squared L2) per
        query row; key -1 pads missing slots. With ``within``, only its nodes come back
        (the others still route the search)."""
        rows = np.require(rows, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
        if rows.ndim != 2 or rows.shape[1] != self.dim or k < 1:
            raise ValueError(f"queries must be (n, {self.dim}) and k positive")
        if within is None:
            view = self._compiled_view()
            # (the compiled search, as single rows take it)
            if view and len(rows) and k <= graph_search.MAX_K:
                keys = np.empty((len(rows), k), dtype=np.int64)
                scores = np.empty((len(rows), k), dtype=np.float32)
                view.search_into(rows, k, ef, keys, scores, _batch_team(len(rows)))
                return keys, scores
            params = self._params.get(ef) or self._search_params(ef)
        else:
            params = within.params(ef)
        labels = self._labels  # (the arrays a concurrent grow may replace)
        found, distances = _searched(self.graph, rows, k, params)
        # (indexing, not ``take``: ``take`` lets go of the interpreter lock, and with
        # another thread waiting for it each hand-over costs tens of µs on a VM).
        # Padding (fewer than k nodes reachable) is position -1: the labels' last slot,
        # which is always -1 (__init__).
        return labels[found], distances

    def takes_rows(self, k: int) -> bool:
        """Does the compiled search answer a search for ``k`` (``search_row_into``)?"""
        return bool(self._compiled_view()) and k <= graph_search.MAX_K

    def search_row_into(self, row: np.ndarray, k: int, ef: int, keys: np.ndarray,
                        scores: np.ndarray) -> None:
        """``search`` of one query row (a C-contiguous, aligned float32 ``(1, dim)``
        array) by the compiled search, where ``takes_rows(k)``, written into ``keys``
        and ``scores`` (C-contiguous, ``k`` items each)."""
        self._view.search_into(row, k, ef, keys, scores, 1)

    def search_row(self, row: np.ndarray, k: int, ef: int) -> tuple[list[int], list[float]]:
        """``search`` of one query, as lists: ``row`` must be a C-contiguous float32 array
        of ``dim`` values (``quantization.one_query`` accepts only such rows, and
        ``prepare`` makes them), which is not checked again here, and ``k`` positive.
        The single query's path: the compiled search where it applies
        (``graph_search``), else faiss's with no arrays made but the keys'
        (``_RowOutput``)."""
        view = self._view
        if view is None:
            view = self._compiled_view()
        if view and k <= graph_search.MAX_K:
            return view.search(row, k, ef)  # type: ignore[no-any-return]
        params = self._params.get(ef) or self._search_params(ef)
        labels = self._labels  # (the arrays a concurrent grow may replace)
        _, distances, found, distances_ptr, found_ptr = _row_output_for(k)
        _one_thread()
        self.graph.search_c(1, faiss.swig_ptr(row), k, distances_ptr, found_ptr, params)
        # (position -1 pads: the labels' last slot, always -1, as in ``search``)
        return labels[found[0]].tolist(), distances[0].tolist()

    def search_hits(self, row: np.ndarray, k: int, ef: int, cached: dict[int, Any],
                    scale: float) -> list[Any] | tuple[list[int], list[float]]:
        """``search_row``, with its hits made in the compiled search's own call when it
        applies (``GraphView.hits``): a ``Hit`` per node found, scored as the store
        scores (the inner product, or minus the squared L2 distance) times ``scale``,
        when all ``k`` nodes found are keys of ``cached`` (``hit_cache.rows``);
        otherwise, and always where faiss searches, ``search_row``'s keys and faiss
        scores. For float32 graphs: an int8 graph's scores are its codes', which
        ``HnswIndex`` scales back (it sends int8 searches elsewhere)."""
        view = self._view
        if view is None:
            view = self._compiled_view()
        if view and k <= graph_search.MAX_K:
            return view.hits(row, k, ef, cached, scale)  # type: ignore[no-any-return]
        return self.search_row(row, k, ef)

    def hits_view(self, k: int) -> Any:
        """The compiled view ``search_hits`` of ``k`` calls ``hits`` on, or None where it
        searches otherwise. Valid until the next insert (``_compiled_view``)."""
        view = self._compiled_view()
        return view if view and k <= graph_search.MAX_K else None

    @property
    def compiled(self) -> bool:
        """Do this graph's unrestricted searches take the compiled search? (Answered
        without making its view: a float32 or int8 graph where the search is built and not
        switched off, unless a view was refused for it, e.g. for its links' number.)"""
        if self._view is not None:  # (made since the last insert: it says)
            return bool(self._view)
        return self.dtype in ("float32", "int8") and graph_search.compiled()

    def _compiled_view(self) -> Any:
        """The compiled search's view of the graph as it stands (``graph_search``),
        made at the first search after an insert; False where it does not apply."""
        view = self._view
        if view is None:
            view = self._view = graph_search.view_of(self.graph, self._labels,
                                                     self._alive) or False
        return view

    def restriction(self, positions: np.ndarray) -> Restriction:
        """The live nodes among graph ``positions``, as a ``Restriction`` to keep a
        search within. Valid while the graph's nodes neither change nor move (the
        caller makes a new one after any insert or removal)."""
        bits = np.zeros(len(self._alive) * 8, dtype=bool)
        bits[positions] = True
        bitmap = np.packbits(bits, bitorder="little")
        bitmap &= self._alive
        return Restriction(bitmap, int(np.count_nonzero(np.unpackbits(bitmap))))

    def node_codes(self, positions: np.ndarray) -> NodeCodes:
        """The live nodes at ``positions`` (distinct) as a flat index of the vectors the
        graph stores for them, copied (``flat_codes``), with their keys."""
        return NodeCodes(flat_of(self.graph, positions, self.dtype),
                         np.append(self._labels[positions], -1))

    @staticmethod
    def search_codes(nodes: NodeCodes, rows: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` node keys and faiss distances per query row among ``nodes``
        (``node_codes``), scored on their stored codes; key -1 pads missing slots."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or k < 1:
            raise ValueError("queries must be two-dimensional and k positive")
        found, distances = _searched(nodes.flat, rows, k)
        return nodes.keys[found], distances

    def _search_params(self, ef: int) -> faiss.SearchParametersHNSW:
        params = self._params.get(ef)
        if params is not None:
            return params
        if self.removed and self._selector is None:
            self._selector = faiss.IDSelectorBitmap(len(self._alive),  # (bytes)
                                                    faiss.swig_ptr(self._alive))
            self._selector.referenced_bitmap = self._alive  # (kept alive with it)
        params = _search_parameters(ef, self._selector if self.removed else None)
        if len(self._params) >= _PARAMS_CACHE:
            self._params = {}
        self._params[ef] = params
        return params

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The rows the graph holds for ``keys`` (float32; int8 codes as their values)."""
        where = self.positions_of(np.asarray(keys, dtype=np.int64))
        if len(where) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if np.any(where < 0):
            raise KeyError(int(np.asarray(keys)[np.argmax(where < 0)]))
        return self._rows_at(where)

    def _rows_at(self, where: np.ndarray) -> np.ndarray:
        """The rows at graph positions ``where`` (non-empty), as float32."""
        _all_threads()
        return self.graph.reconstruct_batch(where).reshape(len(where), self.dim)

    @property
    def memory_usage(self) -> int:
        """Resident bytes: vectors, links, levels, offsets, labels, bitmap, key map,
        fingerprints. The key map and the fingerprints are counted whether or not they
        are built yet (the first write or lookup builds them, and a memory budget must
        see them before), per live node."""
        hnsw = self.graph.hnsw
        codes = self.size * self.graph.storage.sa_code_size()
        links = hnsw.neighbors.size() * 4 + hnsw.offsets.size() * 8 + hnsw.levels.size() * 4
        key_map = len(self) * BYTES_PER_KEY
        prints = PRINT_BYTES * len(self)  # (as the key map: the same before it is made
        # and after a reload; folding keeps its dictionary of recent ones small)
        return int(codes + links + self._labels.nbytes + self._alive.nbytes + key_map
                   + prints)

    # --- files -------------------------------------------------------------------------

    def write_graph(self, write: Callable[[bytes], int]) -> None:
        """Write the faiss graph alone, a block at a time, to ``write`` (a file's
        ``write``). Runs without the interpreter lock but for ``write`` itself, beside
        searches and removals (they change only the labels and the bitmap, which a
        checkpoint copies first), but not beside ``add``: the caller keeps adds away
        meanwhile (``HnswIndex.freeze``)."""
        faiss.write_index(self.graph, faiss.PyCallbackIOWriter(write, WRITE_BLOCK_BYTES))

    def prints_copy(self) -> np.ndarray | None:
        """The fingerprints as sorted (fingerprint, position) pairs, if made or on file
        (a copy)."""
        self._read_prints_file()  # (a checkpoint written before any write keeps them)
        return self._prints.pairs() if self._prints is not None else None

    def labels_copy(self) -> np.ndarray:
        """Each position's key now (-1: removed), as a copy later removals leave alone."""
        return self._labels[:self.size].copy()

    @classmethod
    def load(cls, graph_path: Path, labels_path: Path, dim: int, metric: str,
             dtype: str, prints_path: Path | None = None) -> HnswGraph | None:
        """A graph written by ``write_graph`` with its labels, or ``None`` if the files
        do not fit ``dim``, ``metric`` and ``dtype`` or cannot be read. Its fingerprints
        come from ``prints_path`` when first needed (made again if that file is unfit).
        A file of at least ``mapped_files.MAP_MIN_BYTES`` is mapped, and read through
        in the background."""
        mapping = None
        try:
            mapping = open_for_mapping(graph_path)
            if mapping is None:
                graph = faiss.read_index(str(graph_path))
            else:  # (read through from the start: faiss's read touches the links, which
                mapping.prefetch()  # come first in the file, a small read a page otherwise)
                graph = faiss.read_index(mapping.name, faiss.IO_FLAG_MMAP_IFC)
                # (the lock lives as the mapping; at exit too, while threads still search)
                weakref.finalize(graph, mapping.close).atexit = False
            labels = np.load(labels_path, allow_pickle=False)
        except (OSError, ValueError, RuntimeError):
            if mapping is not None:
                mapping.close()
            return None
        if (not isinstance(graph, faiss.IndexHNSW) or graph.d != dim
                or graph.metric_type != graph_metric(metric)
                or labels.dtype != np.int64 or labels.shape != (graph.ntotal,)):
            return None
        fresh = new_faiss_graph(dim, metric, dtype, 2, 1)  # (the storage type expected)
        if type(graph.storage) is not type(fresh.storage) or (
                graph.storage.sa_code_size() != fresh.storage.sa_code_size()):
            return None
        loaded = cls(dim, metric, dtype, graph.hnsw.nb_neighbors(1),
                     graph.hnsw.efConstruction, graph=graph, labels=labels)
        loaded._prints_file = prints_path
        loaded._mapping = mapping
        loaded.exact_size = True
        return loaded
