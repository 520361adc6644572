"""The derived ANN index: an HNSW graph (faiss, ``hnsw_graph``) with one node per distinct
vector.

A node is keyed by the SQLite row key of its point. Points that share a vector (boilerplate
chunks, templated records) share one node: HNSW graphs degenerate when many nodes lie at
distance zero from each other (their neighbour lists fill up with copies, and searches stop
reaching the rest of the graph). Such a shared node is keyed ``GROUP_BASE + n`` (far above
any row key) and maps to its member row keys; searches expand it back into points.

Writes to a live collection land first in a small *pending* segment (``add(...,
defer=True)``): its points are searchable at once, by exact scoring, and are merged
into the graph a slice at a time (``merge``), so a write never waits for graph
construction and searches never wait behind a large one. Checkpoints merge everything
first, so a checkpoint always holds every point it claims to cover.

The index is never the source of truth. It is checkpointed to ``index/`` (the graph in
faiss's format, its labels, the members of shared nodes and the pending segment, named by
a manifest that records the change sequence they cover: ``checkpoint_files``). A
checkpoint copies what it needs while the caller holds the index lock (``image``) and
writes the graph afterwards, without that lock, while the index keeps the graph
*frozen* (``freeze``/``thaw``): searches and removals go on, inserts land in the pending
segment, and only merges into the graph wait for the write to finish.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Container, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embedops.errors import IndexFailure
from embedops.search_depth import default_depth
from embedops.store import checkpoint_files, quantization
from embedops.store.checkpoint_files import IndexImage, read_manifest
from embedops.store.exact import scores as exact_scores
from embedops.store.exact import top_k
from embedops.store.hnsw_graph import (
    NODE_OVERHEAD_BYTES,
    SCALAR_BYTES,
    HnswGraph,
    Restriction,
)
from embedops.store.match_nodes import MatchNodes, MatchNodesCache
from embedops.store.protocol import Hit

DEFAULT_PARAMS: dict[str, Any] = {
    "connectivity": 16,
    "expansion_add": 128,
    "expansion_search": 64,
    "exact_threshold": 10_000,
    "checkpoint_every": 50_000,
    "oversample": 4,
}
BASE_BYTES = 16 * 1024  # an empty graph's label buffer (1,024 slots), bitmap and key map
# Keys of nodes shared by several points; row keys (SQLite AUTOINCREMENT) stay far below.
GROUP_BASE = 1 << 62
# Matching nodes a search kept within a filter's matches passes at least
# (``_depth_within``): an int8 search's 4 x 10 candidates. For 10 float32 results at
# 10% (6,000 points), passing 100 nodes found recall@10 0.90, 400 found 0.998, the
# unfiltered search at its default depth 0.94.
WITHIN_REACH = 40
LOAD_TRIES = 3  # manifests followed when checkpoints replace the one being read
Loaded = TypeVar("Loaded")


def estimate_memory(n: int, dim: int, dtype: str = "float32", connectivity: int = 16) -> int:
    """Resident bytes an HNSW index of ``n`` distinct vectors of ``dim`` at ``dtype`` will
    need (points with identical vectors share one node; each copy adds ~140 bytes).

    Per node: the vector (``dim`` x 4/2/1 bytes), the links (``2 * connectivity`` 4-byte
    links on the base layer, about ``connectivity / (connectivity - 1)`` more above it),
    and ``NODE_OVERHEAD_BYTES`` of level, offsets, label, key map and fingerprint; plus 10% for
    capacity growth. A planning figure, usually within 50% of
    ``stats()['index_bytes']``; raises ``ValueError`` for an unknown dtype.
    """
    if dtype not in SCALAR_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}")
    links = 4 * (2 * connectivity + connectivity / max(connectivity - 1, 1))
    per_node = dim * SCALAR_BYTES[dtype] + links + NODE_OVERHEAD_BYTES
    return int(n * per_node * 1.1) + BASE_BYTES


@dataclass
class OffLockInsert:
    """A merge of pending points that would copy all of the graph's arrays in place,
    made on a copy of the graph off the index lock (``HnswIndex.off_lock_insert``): the
    points, their vectors as pending (to tell whether they changed meanwhile), their
    codes, the graph's size when prepared, and the copy once made."""

    keys: np.ndarray
    vectors: list[np.ndarray]
    codes: np.ndarray
    size: int
    copy: Any = None
    owner: Any = None  # the segment that prepared it, in a ``SegmentedIndex``


class HnswIndex:
    """HNSW over int row keys; float32 input, quantized per the collection dtype.

    Points whose vectors are identical as stored in the index (the same float32 values, or
    the same float16 / int8 codes) share one graph node. ``len()`` counts points; ``nodes``
    counts graph nodes; ``removed`` counts tombstones (removed or replaced nodes).
    """

    def __init__(self, dim: int, metric: str, dtype: str, params: dict[str, Any],
                 clip: float | None, group_base: int = GROUP_BASE) -> None:
        """``group_base``: the first key of this index's shared nodes (segments of one
        ``SegmentedIndex`` take ranges of their own, so a node key names its segment)."""
        self.dim, self.metric, self.dtype = dim, metric, dtype
        self.params = {**DEFAULT_PARAMS, **params}
        self._depth_set = "expansion_search" in params  # else it follows the size
        self.clip = clip
        self._groups: dict[int, dict[int, None]] = {}  # shared node -> member row keys
        self._group_of: dict[int, int] = {}  # member row key -> shared node
        self.group_base = self._next_group = group_base
        # pending segment: row key -> float32 vector, in write order, plus the stacked
        # keys and rows its searches use: a buffer whose first ``used`` rows are filled,
        # new points appended to it (restacked after a removal or a merge: None)
        self._pending: dict[int, np.ndarray] = {}
        self._pending_buffer: tuple[np.ndarray, np.ndarray, int] | None = None
        # int8 graphs hold codes (round(x * 127 / clip)): their inner products and
        # squared distances are scaled back to the float vectors' by this factor
        self._code_scale = ((clip or 1.0) / quantization.INT8_MAX) ** 2 \
            if dtype == "int8" else 1.0
        # moved on by every change to the points or the graph (``match_nodes``): each
        # goes through ``add``, ``remove`` or ``finish_off_lock_insert``
        self._version = 0
        self._matches = MatchNodesCache()
        self._thawed = threading.Event()  # cleared while a checkpoint writes the graph
        self._thawed.set()
        try:
            self.index = HnswGraph(dim, metric, dtype, int(self.params["connectivity"]),
                                   int(self.params["expansion_add"]))
        except (ValueError, RuntimeError, TypeError) as exc:
            raise IndexFailure(f"cannot create HNSW index: {exc}") from exc

    @property
    def removed(self) -> int:
        """Tombstones in the graph (removed or replaced nodes) until it is rebuilt."""
        return self.index.removed

    def __len__(self) -> int:
        """Points (row keys) in the index, pending ones included."""
        return len(self.index) - len(self._groups) + len(self._group_of) + len(self._pending)

    @property
    def nodes(self) -> int:
        """Search candidates: graph nodes (distinct vectors) plus pending points."""
        return len(self.index) + len(self._pending)

    @property
    def pending(self) -> int:
        """Points written but not merged into the graph yet (searched exactly)."""
        return len(self._pending)

    @property
    def version(self) -> int:
        """Moved on by every change to the points or the graph."""
        return self._version

    def written(self, image: IndexImage) -> None:
        """A checkpoint of ``image`` is on disk (nothing to note for one graph: each
        checkpoint writes it whole)."""

    @property
    def next_group(self) -> int:
        """The key the next shared node will take."""
        return self._next_group

    @property
    def rewritten_nodes(self) -> int:
        """Nodes a checkpoint writes at most: the whole index (``nodes``)."""
        return self.nodes

    @property
    def graphs(self) -> list[HnswGraph]:
        """The graphs this index searches: its one graph."""
        return [self.index]

    def copy_due(self, count: int) -> bool:
        """Would a merge of ``count`` pending points copy all of the graph's arrays
        (``HnswGraph.copy_due``)?"""
        return self.index.copy_due(count)

    def holds(self, keys: np.ndarray) -> np.ndarray:
        """Per key: is the point in this index (in the graph, on a shared node, or
        pending)?"""
        keys = np.asarray(keys, dtype=np.int64)
        held = self.index.contains(keys)  # (a graph loaded, its key map not built yet:
        # the labels scanned, as its removals scan them, not the map built under the lock)
        if self._group_of:
            group_of = self._group_of
            held |= np.fromiter((key in group_of for key in keys.tolist()), dtype=bool,
                                count=len(keys))
        if self._pending:
            held |= np.isin(keys, self._pending_arrays()[0])
        return held

    def _codes(self, vectors: np.ndarray) -> np.ndarray:
        if self.dtype == "int8":
            return quantization.quantize(vectors, self.clip or 1.0)
        return vectors

    def add(self, keys: np.ndarray, vectors: np.ndarray, defer: bool = False) -> None:
        """Insert or replace points ``keys`` (int64 row keys) with ``vectors`` (float32 rows).

        With ``defer`` (or while the graph is frozen), the points go to the pending
        segment (searchable at once; ``merge`` moves them into the graph). Otherwise they
        go into the graph now, and a point whose vector some node already holds joins
        that node instead of adding one.
        """
        self._version += 1
        if len(keys) == 0:
            return
        keys = np.asarray(keys, dtype=np.int64)
        if defer or self.frozen:
            self.remove(keys)  # a replaced point leaves the graph (or the segment) first
            self._to_pending(keys, vectors)
            return
        try:
            self.remove(keys)  # replacements leave their old node first
            codes = self._codes(vectors)
            first, inverse = _unique_rows(codes)
            nodes = self.index.find(codes[first])  # (by fingerprint)
            if len(first) == len(keys) and (nodes < 0).all():  # the common case: all new
                self.index.add(keys, codes)
                return
            self._add_shared(keys, codes, first, inverse, nodes)
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise IndexFailure(f"HNSW insert failed: {exc}") from exc

    def _to_pending(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Append points the index does not hold to the pending segment."""
        rows = np.asarray(vectors, dtype=np.float32)
        for key, vector in zip(keys.tolist(), rows, strict=True):
            self._pending[key] = vector
        self._append_pending(keys, rows)

    def merge(self, limit: int) -> int:
        """Move up to ``limit`` pending points (oldest first) into the graph; returns how
        many moved (none while the graph is frozen). Searches see the same points before
        and after."""
        if not self._pending or limit <= 0 or self.frozen:
            return 0
        keys, vectors = self._oldest_pending(limit)
        self.add(np.asarray(keys, dtype=np.int64), np.stack(vectors))  # (into the graph)
        self._unpend(keys)
        return len(keys)

    def _oldest_pending(self, limit: int) -> tuple[list[int], list[np.ndarray]]:
        """Up to ``limit`` pending points, oldest first: their keys and vectors."""
        keys = list(islice(self._pending, limit))
        return keys, [self._pending[key] for key in keys]

    def _unpend(self, keys: list[int]) -> None:
        """Points now in the graph leave the pending segment."""
        for key in keys:
            self._pending.pop(key, None)
        self._pending_buffer = None

    def off_lock_insert(self, limit: int) -> OffLockInsert | None:
        """A merge that would reallocate and copy all of faiss's arrays in place
        (``HnswGraph.copy_due``: the first insert into a graph read from a file, or one
        about to outgrow its arrays), prepared to be made on a copy off the index lock:
        up to ``limit`` pending points, or None when no such merge is due, the graph is
        frozen, or the points include copies of vectors it holds (those merge the usual
        way). Call with the index lock shared at least, from the one thread that merges
        (the lookup may read the fingerprint file, which only this thread and writers,
        which hold the lock exclusive, do); then ``make_copy`` with no index lock held,
        and ``finish_off_lock_insert`` with the lock exclusive."""
        if not self._pending or self.frozen or not self.index.copy_due(
                min(limit, len(self._pending))):
            return None
        keys, vectors = self._oldest_pending(limit)
        codes = self._codes(np.stack(vectors))
        first, _ = _unique_rows(codes)
        if len(first) != len(keys) or (self.index.find(codes) >= 0).any():
            return None
        return OffLockInsert(np.asarray(keys, dtype=np.int64), vectors, codes,
                             self.index.size)

    def make_copy(self, job: OffLockInsert) -> None:
        """The graph's copy with the job's points inserted. Needs no index lock:
        searches, removals and deferred writes go on meanwhile, and an insert into the
        graph waits for the copy (``HnswGraph.grown_copy``)."""
        try:
            job.copy = self.index.grown_copy(job.codes)
        except (ValueError, RuntimeError, MemoryError) as exc:
            self.index.no_copies()  # (the next merges insert in place)
            raise IndexFailure(f"HNSW insert into a copy failed: {exc}") from exc

    def finish_off_lock_insert(self, job: OffLockInsert) -> Any:
        """Take the job's copy as the graph and its points out of the pending segment,
        unless the graph or those points changed meanwhile (None: nothing done; they
        stay pending). Call with the index lock held. Returns the faiss graph replaced,
        to be let go of after the lock."""
        if job.copy is None or self.frozen or self.index.size != job.size or any(
                self._pending.get(key) is not vector
                for key, vector in zip(job.keys.tolist(), job.vectors, strict=True)):
            return None
        self._version += 1
        replaced = self.index.adopt(job.copy, job.keys, job.codes)
        job.copy = None
        self._unpend(job.keys.tolist())
        return replaced

    def merge_all(self) -> None:
        self.merge(len(self._pending))

    # --- checkpoints ---------------------------------------------------------------------

    @property
    def frozen(self) -> bool:
        """Is a checkpoint writing the graph now (``freeze``)? Inserts then go to the
        pending segment and merges wait."""
        return not self._thawed.is_set()

    def freeze(self, seq: int) -> IndexImage:
        """The index as of change ``seq`` for a checkpoint, with the graph frozen until
        ``thaw``: what later writes change (labels, members, the pending segment) is
        copied; the graph, which only inserts change, is kept as it is."""
        self._thawed.clear()
        return self.image(seq)

    def thaw(self) -> None:
        """The checkpoint has written the graph: merges may change it again."""
        self._thawed.set()

    def image(self, seq: int) -> IndexImage:
        """What a checkpoint of this index as of change ``seq`` holds (copies, but for the
        graph itself: the caller keeps inserts away from it until written)."""
        pending_keys, pending_rows = self._pending_arrays()
        groups = None
        if self._groups:
            groups = np.fromiter((x for node, members in self._groups.items()
                                  for key in members for x in (node, key)),
                                 dtype=np.int64, count=2 * len(self._group_of)).reshape(-1, 2)
        return IndexImage(
            seq=seq, graph=self.index, labels=self.index.labels_copy(), groups=groups,
            prints=self.index.prints_copy(),
            pending_keys=pending_keys.copy(), pending_vectors=pending_rows.copy(),
            manifest={"dim": self.dim, "metric": self.metric, "dtype": self.dtype,
                      "clip": self.clip, "size": len(self), "nodes": len(self.index),
                      "removed": self.removed, "next_group": self._next_group,
                      "group_base": self.group_base, "params": self.params})

    def save(self, folder: Path, cid: int, seq: int) -> Path:
        """Checkpoint the index as covering change ``seq`` now, pending points merged
        into the graph first; returns the graph file's path."""
        self.merge_all()
        return checkpoint_files.write(folder, cid, self.image(seq))

    def _pending_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending_buffer is None:
            keys = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
            matrix = (np.stack(list(self._pending.values())) if self._pending
                      else np.zeros((0, self.dim), dtype=np.float32))
            self._pending_buffer = (keys, matrix, len(keys))
        keys, rows, used = self._pending_buffer
        return keys[:used], rows[:used]

    def _append_pending(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Add new pending points (just inserted into ``_pending``, after every key it
        held) to the stacked matrix in place of restacking it: a write then costs its
        own rows, not the whole segment's, on the next search. Views handed out before
        keep their rows (they end where the buffer was filled then)."""
        if self._pending_buffer is None or len(np.unique(keys)) != len(keys):
            self._pending_buffer = None
            return  # stacked from the dict by the next search
        held_keys, held_rows, used = self._pending_buffer
        need = used + len(keys)
        if need > len(held_keys):
            capacity = max(need, 2 * len(held_keys), 1024)
            grown_keys = np.empty(capacity, dtype=np.int64)
            grown_rows = np.empty((capacity, self.dim), dtype=np.float32)
            grown_keys[:used], grown_rows[:used] = held_keys[:used], held_rows[:used]
            held_keys, held_rows = grown_keys, grown_rows
        held_keys[used:need], held_rows[used:need] = keys, rows
        self._pending_buffer = (held_keys, held_rows, need)

    def _add_shared(self, keys: np.ndarray, codes: np.ndarray, first: np.ndarray,
                    inverse: np.ndarray, nodes: np.ndarray) -> None:
        """Add a batch with repeated vectors: one node per distinct vector."""
        members: list[list[int]] = [[] for _ in first]
        for key, which in zip(keys.tolist(), inverse.tolist(), strict=True):
            members[which].append(key)
        new_keys: list[int] = []
        new_rows: list[int] = []
        for which, node in enumerate(nodes.tolist()):
            points = members[which]
            if node >= 0:  # the graph already holds this vector
                self._join(self._shared(node), points)
                continue
            if len(points) == 1:
                new_keys.append(points[0])
            else:
                new_keys.append(self._new_group())
                self._join(new_keys[-1], points)
            new_rows.append(int(first[which]))
        if new_keys:
            self.index.add(np.asarray(new_keys, dtype=np.int64), codes[new_rows])

    def _new_group(self) -> int:
        node, self._next_group = self._next_group, self._next_group + 1
        self._groups[node] = {}
        return node

    def _shared(self, node: int) -> int:
        """The shared node for ``node``: a plain node (one point) becomes a shared one."""
        if node >= GROUP_BASE:
            return node
        group = self._new_group()
        if not self.index.rename(node, group):
            raise IndexFailure(f"HNSW rename of node {node} failed")
        self._join(group, [node])
        return group

    def _join(self, node: int, keys: list[int]) -> None:
        self._groups[node].update(dict.fromkeys(keys))
        self._group_of.update(dict.fromkeys(keys, node))

    def remove(self, keys: np.ndarray) -> int:
        """Remove the points ``keys`` that are present; returns how many were removed.

        A shared node leaves the graph with its last member.
        """
        self._version += 1
        if len(keys) == 0:
            return 0
        plain: list[int] = []
        emptied: list[int] = []
        shared = 0
        for key in np.asarray(keys, dtype=np.int64).tolist():
            if self._pending and self._pending.pop(key, None) is not None:
                shared += 1  # a pending point leaves no tombstone in the graph
                self._pending_buffer = None
                continue
            node = self._group_of.pop(key, None) if self._group_of else None
            if node is None:
                plain.append(key)
                continue
            shared += 1
            members = self._groups[node]
            del members[key]
            if not members:
                del self._groups[node]
                emptied.append(node)
        gone = self._remove_nodes(plain)
        self._remove_nodes(emptied)
        return gone + shared

    def _remove_nodes(self, nodes: list[int]) -> int:
        if not nodes:
            return 0
        return self.index.remove(np.asarray(nodes, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, ef: int | None = None,
               threads: int = 0, least: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` point row keys and scores (higher is better) per query; -1 pads.

        Points sharing a node share its score and come back in insertion order.
        ``least``: a caller that keeps fewer than ``k`` (an int8 collection's rescoring,
        ``oversample`` × the hits it keeps) and asks a depth (``ef``, or the collection's
        ``expansion_search``) gets as many as that depth passes, at least ``least``
        (``candidates``): the depth asked counts below ``k``.
        """
        k = candidates(k, ef or (self.params["expansion_search"] if self._depth_set
                                 else None), least)
        keys, scores = self.search_nodes(queries, k, ef, threads)
        if self._groups and (keys >= GROUP_BASE).any():
            return self._expand(keys, scores, max(1, min(k, len(self))))
        return keys, scores

    def search_one(self, query: np.ndarray, k: int, ef: int | None = None
                   ) -> tuple[list[int], list[float]]:
        """``search`` of one query row, a C-contiguous ``(1, dim)`` float32 array (as
        ``quantization.one_query`` and ``prepare`` make them; not checked again), as
        lists of keys and scores: a single search's path, where every line costs
        against a graph search of ~100 µs. Shared nodes
        take the general way only when the graph returns one (a real corpus nearly
        always holds a few identical texts); pending points are scored and merged in
        ``_with_pending``. Without pending points a short result keeps the graph's
        padding (key -1, score -inf) at its end; with them it is dropped."""
        graph = self.index
        live = graph.size - graph.removed
        if self._pending:
            keys, values = self._graph_one(query, k, ef, live) if live else ([], [])
            return self._with_pending(query, k, keys, values)
        if live == 0:
            return [], []
        return self._graph_one(query, k, ef, live)

    def _with_pending(self, query: np.ndarray, k: int, keys: list[int], values: list[float]
                      ) -> tuple[list[int], list[float]]:
        """The graph's ranked points ``keys``/``values`` for one query merged with the
        pending segment's best ``k``, as ``search`` ranks them (by score, the graph's
        first among equal scores), ``k`` at most; the graph's padding (-1) is dropped."""
        pending_keys, matrix = self._pending_arrays()
        best, sims = top_k(exact_scores(query, matrix, self.metric).astype(np.float32,
                                                                           copy=False), k)
        candidates = [(value, key) for value, key in zip(values, keys, strict=True)
                      if key >= 0]
        candidates += zip(sims[0].tolist(), pending_keys[best[0]].tolist(), strict=True)
        ranked = sorted(candidates, key=lambda pair: -pair[0])[:k]
        return [key for _, key in ranked], [value for value, _ in ranked]

    def search_hits(self, query: np.ndarray, k: int, ef: int | None,
                    cached: dict[int, Any], scale: float
                    ) -> list[Hit] | tuple[list[int], list[float]]:
        """``search_one``, with its hits made in the graph search's own call when the
        graph alone answers (no pending points, ``k`` at most its live nodes, a float32
        graph the compiled search takes) and every point it finds is a key of ``cached``
        (``hit_cache.rows``): a ``Hit`` per point then, best first, scored
        ``score * scale`` (``HnswGraph.search_hits``). Otherwise ``search_one``'s keys
        and scores, from the same search."""
        graph = self.index
        if self._pending or self.dtype == "int8" or k > len(graph):  # (its live nodes)
            return self.search_one(query, k, ef)
        try:
            found = graph.search_hits(query, k, self._depth(ef, k), cached, scale)
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW search failed: {exc}") from exc
        if type(found) is list:
            return found
        return self._ranked(found[0], found[1], k, graph_scores=True)

    def direct_hits(self, k: int, ef: int | None
                    ) -> tuple[Any, int, Callable[..., tuple[list[int], list[float]]]] | None:
        """What ``search_hits`` of ``k`` and ``ef`` hands its search to when it goes
        straight to the compiled search (no pending points, a float32 graph with ``k``
        live nodes at least): the graph's view (``HnswGraph.hits_view``), the depth it
        passes, and ``_ranked`` for an answer the view returns as keys and scores.
        None where it does not. For a caller that calls ``view.hits`` itself while
        nothing changes this index (``search.Searcher.direct_plan``)."""
        graph = self.index
        if self._pending or self.dtype == "int8" or k > len(graph):
            return None
        view = graph.hits_view(k)
        return None if view is None else (view, self._depth(ef, k), self._ranked)

    def _graph_one(self, query: np.ndarray, k: int, ef: int | None, live: int
                   ) -> tuple[list[int], list[float]]:
        """``search_one`` over the graph alone, which holds ``live`` (> 0) nodes."""
        k_graph = min(k, live)
        if self.dtype == "int8":  # (the query as codes, the scores scaled back)
            found, scores = self._scored(query, k_graph, ef)
            return self._ranked(found[0].tolist(), scores[0].tolist(), k, graph_scores=False)
        try:
            keys, values = self.index.search_row(query, k_graph, self._depth(ef, k_graph))
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW search failed: {exc}") from exc
        return self._ranked(keys, values, k, graph_scores=True)

    def _ranked(self, keys: list[int], values: list[float], k: int, graph_scores: bool
                ) -> tuple[list[int], list[float]]:
        """The graph's best nodes ``keys`` and their scores ``values`` for one query as
        ``search_one`` answers: store scores (``graph_scores``: the float graph's own,
        whose squared L2 distances are negated here), shared nodes' points in their
        place, padding scored -inf."""
        if graph_scores and self.metric == "l2":  # (faiss gives squared distances)
            values = [-value for value in values]
        if self._groups and max(keys) >= GROUP_BASE:  # a shared node: its points
            found, scores = self._expand(np.asarray([keys], dtype=np.int64),
                                         np.asarray([values], dtype=np.float32),
                                         max(1, min(k, len(self))))
            return found[0].tolist(), scores[0].tolist()
        if keys[-1] < 0:  # (faiss pads a short result at its end)
            values = [v if key >= 0 else -math.inf for key, v in zip(keys, values, strict=True)]
        return keys, values

    def search_nodes(self, queries: np.ndarray, k: int, ef: int | None = None,
                     threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` graph nodes and scores per query; -1 pads missing slots.

        ``members(node)`` gives a node's points. The search depth is
        ``max(ef or expansion_search, k)`` (no ``expansion_search`` set: ``default_depth``
        of the live nodes), widened by up to 2x while tombstones (removed or replaced
        nodes) make up to a quarter of the index.
        """
        k = max(1, min(k, self.nodes))
        keys, scores = self._search_graph(queries, k, ef, threads)
        if not self._pending:
            return keys, scores
        pending_keys, matrix = self._pending_arrays()
        idx, vals = top_k(exact_scores(queries, matrix, self.metric), k)
        return _best_of(keys, scores, pending_keys[idx], vals, k)

    def _search_graph(self, queries: np.ndarray, k: int, ef: int | None,
                      threads: int) -> tuple[np.ndarray, np.ndarray]:
        """(faiss spreads a batch of queries over the cores itself: ``threads`` is not
        needed; a single query runs on the calling thread, without the interpreter lock.)"""
        if len(self.index) == 0:
            return (np.zeros((len(queries), 0), dtype=np.int64),
                    np.zeros((len(queries), 0), dtype=np.float32))
        keys, scores = self._scored(queries, max(1, min(k, len(self.index))), ef)
        if keys.size and keys.min() < 0:
            scores[keys < 0] = -np.inf
        return keys, scores

    def _scored(self, queries: np.ndarray, k: int, ef: int | None,
                within: Restriction | None = None, share: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray]:
        """The graph's top-``k`` node keys per query row (-1 pads) and their scores as
        similarities (higher is better, int8 codes scaled back); with ``within``, only
        its nodes (``share``: as ``_depth_within``)."""
        depth = (self._depth(ef, k) if within is None
                 else self._depth_within(ef, k, within, share))
        try:
            keys, scores = self.index.search(self._codes(queries), k, depth, within)
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW search failed: {exc}") from exc
        return keys, self.similarities(scores)

    def similarities(self, scores: np.ndarray) -> np.ndarray:
        """The graph's own scores (inner products, or squared L2 distances, of the
        vectors or codes it holds) made similarities in place: higher is better, int8
        codes scaled back."""
        if self.metric == "l2":
            np.negative(scores, out=scores)
        if self._code_scale != 1.0:
            scores *= np.float32(self._code_scale)
        return scores

    def takes_row(self, k: int) -> bool:
        """Can ``search_row_into`` search for ``k``: the graph alone answers, by the
        compiled search (no pending points, ``k`` at most its live nodes)?"""
        return not self._pending and k <= len(self.index) and self.index.takes_rows(k)

    def search_row_into(self, codes: np.ndarray, k: int, ef: int | None, keys: np.ndarray,
                        scores: np.ndarray) -> None:
        """``search_nodes`` of one query for a caller that searches many indexes with it
        (``SegmentedIndex``), where ``takes_row(k)``: ``codes`` is the query as
        ``codes`` makes it, a C-contiguous, aligned float32 ``(1, dim)`` row; the best
        ``k`` nodes' keys (-1 pads) and the graph's own scores (``similarities``
        makes them what ``search_nodes`` gives) are written into ``keys`` and
        ``scores`` (C-contiguous, ``k`` items each), at the depth ``search_nodes``
        would search."""
        try:
            self.index.search_row_into(codes, k, self._depth(ef, k), keys, scores)
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW search failed: {exc}") from exc

    @property
    def search_depth(self) -> int:
        """The depth a search that asks for none runs at now (``_depth``)."""
        return self._depth(None, 1)

    def _depth(self, ef: int | None, k: int, by_faiss: bool = False) -> int:
        """The search depth for ``ef`` (None: the index's own) and ``k`` results, widened
        while the graph holds removed nodes (until compaction clears them): in faiss's
        search (``by_faiss``, or a graph the compiled search does not take) they occupy
        places in the queue of candidates, by 4× their share of the graph; the compiled
        search (``graph_search``) keeps live nodes alone but still walks past removed
        ones, by 2× their share: on 4,500 MiniLM vectors with 10-45% removed, the same
        recall@10 as faiss's at 0.98-1.13× its queries per second
        (``bench/graph_search.py --removed``), where 4× ran at 0.7-0.9× (a diagnostic)."""
        graph = self.index
        ef_value = ef or (self.params["expansion_search"] if self._depth_set
                          else default_depth(graph.size - graph.removed))
        removed = graph.removed
        if removed:
            per_share = 4.0 if by_faiss or not graph.compiled else 2.0
            ef_value = int(ef_value * (1.0 + per_share * removed / max(graph.size, 1)))
        return max(int(ef_value), k)

    def _depth_within(self, ef: int | None, k: int, within: Restriction,
                      share: float = 1.0) -> int:
        """The depth of a search for ``k`` kept ``within`` a share ``s`` of the live
        nodes: ``_depth(ef, k)``, and at least ``max(k, WITHIN_REACH) / s``. The search
        stops where an unrestricted one at its depth would, and only a share of the
        nodes it passes count, so it must pass ``k / s`` nodes to hold ``k`` of them on
        average; fewer than ``WITHIN_REACH`` vary too much around the query. A 10%
        filter's recall@10 is then about the unfiltered search's at the default depth
        (docs/benchmarks-store.md). ``share``: this graph's part of a filter's matches
        when other graphs hold the rest (segments, ``segmented_index``), which pass
        the rest of the reach: on average the best ``k`` overall hold ``share * k`` of
        this graph's."""
        live = max(self.index.size - self.index.removed, 1)
        depth = self._depth(ef, k, by_faiss=True)  # (restricted searches: faiss's)
        reach = max(k, WITHIN_REACH) * share
        # (no deeper than the graph: its matches mostly pending)
        return max(depth, min(math.ceil(reach * live / max(within.count, 1)), live))

    def search_among(self, queries: np.ndarray, k: int, keys: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact top-``k`` points among ``keys`` (the points a filter matches) per query:
        row keys and scores (higher is better, int8 codes scaled back as ``search``
        scales them; -1 pads), scored on the vectors the index holds (``stored``), the
        graph's nodes on their codes (``flat_codes``), pending points as ``search``
        scores them. A shared node stands for its points among ``keys``, which tie.
        None when the index does not hold every one of ``keys``. What is found out about
        ``keys`` is kept for the next search that brings the same array while the index
        is unchanged (``match_nodes``)."""
        among = self._matched(keys, restricted=False)
        if among is None:
            return None
        found = np.zeros((len(queries), 0), dtype=np.int64)
        values = np.zeros((len(queries), 0), dtype=np.float32)
        if among.nodes is not None:
            width = min(k, len(among.nodes.keys) - 1)
            found, values = self.index.search_codes(among.nodes, self.codes(queries), width)
            if self.metric == "l2":
                np.negative(values, out=values)
            values *= np.float32(self._code_scale)
            values[found < 0] = -np.inf
        return self._with_pending_among(among, queries, k, found, values)

    def search_within(self, queries: np.ndarray, k: int, keys: np.ndarray,
                      ef: int | None = None, share: float = 1.0
                      ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``k`` points among ``keys`` (the many points a broad filter matches) per
        query, as ``search_among`` returns them: the graph searched over its nodes among
        ``keys``, deeper the fewer they are (``_depth_within``), the search kept within
        them (``HnswGraph.restriction``: the other nodes still route it), so
        every candidate it returns matches; pending points among ``keys`` scored as
        ``search`` scores them (``share``: as ``_depth_within``). None when the index
        does not hold every one of
        ``keys``. The bitmap is kept like ``search_among``'s codes (``match_nodes``)."""
        among = self._matched(keys, restricted=True)
        if among is None:
            return None
        found = np.zeros((len(queries), 0), dtype=np.int64)
        values = np.zeros((len(queries), 0), dtype=np.float32)
        if among.within is not None and among.within.count:
            found, values = self._scored(queries, min(k, among.within.count), ef,
                                         within=among.within, share=share)
            values[found < 0] = -np.inf
        return self._with_pending_among(among, queries, k, found, values)

    def restricted(self, keys: np.ndarray) -> bool:
        """Whether what ``search_within`` needs for ``keys`` is kept now."""
        return self._matches.get(np.asarray(keys, dtype=np.int64), self._version,
                                 True) is not None

    def restrict(self, keys: np.ndarray) -> bool:
        """Make (or find kept) what ``search_within`` needs for ``keys``, and keep it;
        False when the index does not hold every one of them, or it is too large to
        keep (``match_nodes``: each search would make it again)."""
        among = self._matched(keys, restricted=True)
        return among is not None and self._matches.holds(among)

    def _matched(self, keys: np.ndarray, restricted: bool) -> MatchNodes | None:
        """What a search among ``keys`` needs (``match_nodes``), kept or made now; None
        when some key is neither pending nor in the graph."""
        keys = np.asarray(keys, dtype=np.int64)
        among = self._matches.get(keys, self._version, restricted)
        if among is None:
            among = self._match_nodes(keys, restricted)
            if among is not None:
                self._matches.put(among)
        return among

    def _with_pending_among(self, among: MatchNodes, queries: np.ndarray, k: int,
                            found: np.ndarray, values: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
        """The graph's ranked nodes among a filter's matches (``found``/``values``) as
        points (a shared node: its members among the matches), merged with the best
        ``k`` of the pending points among them."""
        if among.shared is not None and (found >= GROUP_BASE).any():
            found, values = self._expand(found, values, k, among=among.shared)
        if among.waiting.any():
            chosen = among.keys[among.waiting]
            rows = np.stack([self._pending[key] for key in chosen.tolist()])
            sims = exact_scores(self.codes(queries), self.codes(rows),
                                "l2" if self.metric == "l2" else "ip")
            best, sims = top_k(sims * np.float32(self._code_scale), k)
            found, values = _best_of(found, values, chosen[best], sims, k)
        return found, values

    def _match_nodes(self, keys: np.ndarray, restricted: bool) -> MatchNodes | None:
        """Which of ``keys`` are pending, and the graph nodes the others stand on, as
        codes or, ``restricted``, as a bitmap (None: some key is in neither)."""
        waiting = np.zeros(len(keys), dtype=bool)
        if self._pending:
            waiting = np.isin(keys, self._pending_arrays()[0])
        nodes = keys[~waiting]
        shared = None
        if self._group_of:
            group_of = self._group_of
            in_graph = nodes.tolist()
            nodes = np.fromiter((group_of.get(key, key) for key in in_graph),
                                dtype=np.int64, count=len(nodes))
            on_shared = nodes >= GROUP_BASE
            if on_shared.any():  # (only these: a plain node found is a match itself)
                shared = set(np.asarray(in_graph, dtype=np.int64)[on_shared].tolist())
        positions = self.index.positions_of(nodes)
        if (positions < 0).any():
            return None
        positions = np.unique(positions)
        if restricted:
            within = self.index.restriction(positions) if len(positions) else None
            return MatchNodes(keys, self._version, waiting, None, shared, True, within)
        codes = self.index.node_codes(positions) if len(positions) else None
        return MatchNodes(keys, self._version, waiting, codes, shared)

    def members(self, node: int) -> Collection[int]:
        """The row keys of the points a node holds (insertion order)."""
        return self._groups.get(node) or (node,)

    def _expand(self, nodes: np.ndarray, scores: np.ndarray, width: int,
                among: Container[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ranked nodes -> ranked points, ``width`` per query (a node's points tie); with
        ``among``, only a shared node's points in it (a plain node stands for its one
        point: the callers pass only nodes of matching points)."""
        out_keys = np.full((len(nodes), width), -1, dtype=np.int64)
        out_scores = np.full((len(nodes), width), -np.inf, dtype=np.float32)
        for qi, (row, vals) in enumerate(zip(nodes.tolist(), scores.tolist(), strict=True)):
            keys: list[int] = []
            ranks: list[int] = []
            for rank, node in enumerate(row):
                if node < 0 or len(keys) >= width:
                    break
                before = len(keys)
                members: Iterable[int] = self.members(node)
                if among is not None and node >= GROUP_BASE:
                    members = (key for key in members if key in among)
                keys.extend(islice(members, width - before))
                ranks.extend([rank] * (len(keys) - before))
            out_keys[qi, :len(keys)] = keys
            out_scores[qi, :len(keys)] = np.asarray(vals, dtype=np.float32)[ranks]
        return out_keys, out_scores

    def stored(self, keys: np.ndarray, by_node: bool = False) -> np.ndarray:
        """The vectors the index holds for points ``keys`` (for graph nodes if ``by_node``),
        as float32 values of the index's own scalars (int8 codes for int8 indexes)."""
        if len(keys) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._pending and not by_node:
            keys = np.asarray(keys, dtype=np.int64)
            waiting = np.fromiter((k in self._pending for k in keys.tolist()), dtype=bool,
                                  count=len(keys))
            if waiting.any():
                out = np.zeros((len(keys), self.dim), dtype=np.float32)
                out[waiting] = self._codes(np.stack(
                    [self._pending[k] for k in keys[waiting].tolist()]))
                if (~waiting).any():
                    out[~waiting] = self.stored(keys[~waiting])
                return out
        if not by_node and self._group_of:
            keys = np.fromiter((self._group_of.get(k, k) for k in keys.tolist()),
                               dtype=np.int64, count=len(keys))
        return self.index.get(np.asarray(keys, dtype=np.int64))

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as the graph holds them (int8 codes for int8 indexes), as float32."""
        return np.asarray(self._codes(vectors), dtype=np.float32)

    def matches_vectors(self, keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Per key: does the index hold ``vectors`` (as this index would encode them)?"""
        held = self.stored(keys).astype(np.float32)
        expect = self._codes(vectors).astype(np.float32)
        tolerance = 1.0 if self.dtype == "int8" else 1e-2 if self.dtype == "float16" else 1e-5
        return np.all(np.abs(held - expect) <= tolerance, axis=1)

    def keys(self) -> np.ndarray:
        """Every point (row key) currently in the index."""
        nodes = self.index.keys()
        plain = nodes[nodes < GROUP_BASE]
        shared = np.fromiter(self._group_of, dtype=np.int64, count=len(self._group_of))
        pending = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        return np.concatenate([plain, shared, pending])

    @property
    def mapped(self) -> bool:
        """Does the graph map its checkpoint file (``mapped_files``)?"""
        return self.index.mapped

    @property
    def memory_bytes(self) -> int:
        """Resident bytes, counting pending points as the graph will hold them once
        merged (plus their float32 copies), so memory budgets see them at once."""
        used = int(self.index.memory_usage) + self._matches.nbytes
        if self._pending:
            merged = estimate_memory(len(self._pending), self.dim, self.dtype,
                                     int(self.params["connectivity"]))
            used += merged - BASE_BYTES + len(self._pending) * self.dim * 4
        return used

    def _load_groups(self, path: Path, next_group: int) -> bool:
        """Restore shared nodes from a checkpoint; False if the file does not fit the graph."""
        try:
            pairs = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return False
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype != np.int64:
            return False
        nodes = np.unique(pairs[:, 0])
        if len(nodes) and (nodes.min() < self.group_base or nodes.max() >= next_group
                           or not np.all(self.index.contains(nodes))):
            return False
        for node, key in pairs.tolist():
            self._groups.setdefault(node, {})[key] = None
            self._group_of[key] = node
        self._next_group = next_group
        return True

    @classmethod
    def load(cls, folder: Path, cid: int, dim: int, metric: str, dtype: str,
             params: dict[str, Any], clip: float | None) -> tuple[HnswIndex, int] | None:
        """The checkpointed index and its seq, or ``None`` if absent, stale or unreadable.
        A checkpoint replaced while it was read (its files removed under the reader) is
        followed to the one that replaced it."""
        return followed(folder, cid, lambda manifest: cls.from_manifest(
            folder, manifest, dim, metric, dtype, params, clip))

    @classmethod
    def from_manifest(cls, folder: Path, manifest: dict[str, Any], dim: int, metric: str,
                      dtype: str, params: dict[str, Any], clip: float | None
                      ) -> tuple[HnswIndex, int] | None:
        """The index a checkpoint manifest (or one segment's part of it, with the
        manifest's other fields) names in ``folder``, and its seq; None if it does not
        fit the collection or a file cannot be read."""
        same = (manifest.get("dim"), manifest.get("dtype"), manifest.get("metric"),
                manifest.get("clip")) == (dim, dtype, metric, clip)
        path = folder / str(manifest.get("file", ""))
        if not same or not path.is_file():
            return None
        try:
            group_base = int(manifest.get("group_base", GROUP_BASE))
            next_group = int(manifest.get("next_group", group_base))
        except (TypeError, ValueError):
            return None
        if group_base < GROUP_BASE:
            return None
        index = cls(dim, metric, dtype, params, clip, group_base=group_base)
        prints = manifest.get("prints")
        graph = HnswGraph.load(path, folder / str(manifest.get("labels", "")), dim, metric,
                               dtype, folder / str(prints) if prints else None)
        if graph is None:
            return None
        index.index = graph
        groups = manifest.get("groups")
        if groups and not index._load_groups(folder / str(groups), next_group):
            return None
        if manifest.get("pending"):
            pending = checkpoint_files.read_pending(folder / str(manifest["pending"]), dim)
            if pending is None:
                return None
            # (pending points are never in the graph too: restored without the removal
            # ``add`` makes first, a scan of the labels while the key map is not built)
            index._to_pending(*pending)
        return index, int(manifest["seq"])


def candidates(k: int, depth: int | None, least: int | None) -> int:
    """How many candidates a search asked for ``k`` returns at an asked ``depth`` (None:
    the default one) when its caller keeps ``least`` of them: ``k``, unless both are
    given, then as many as the depth passes, between ``least`` and ``k``. An int8
    collection's rescoring asks ``oversample × k`` candidates: without this, every
    graph searched at least that deep, and at 10M in 50 segments each searched ≥ 40
    deep whatever the depth asked (docs/benchmarks-store.md, "The depth asked counts
    again in an int8 collection of segments")."""
    if least is None or depth is None:
        return k
    return min(k, max(least, depth))


def followed(folder: Path, cid: int, load: Callable[[dict[str, Any]], Loaded | None]
             ) -> Loaded | None:
    """``load(manifest)`` of collection ``cid``'s checkpoint manifest, or None when there
    is none or it cannot be loaded. A checkpoint replaced while it was read (its files
    removed under the reader) is followed to the one that replaced it."""
    manifest = read_manifest(folder, cid)
    for _ in range(LOAD_TRIES):
        if manifest is None:
            return None
        loaded = load(manifest)
        now = read_manifest(folder, cid)
        if loaded is not None or now == manifest:
            return loaded
        manifest = now
    return None


def _best_of(keys: np.ndarray, scores: np.ndarray, more_keys: np.ndarray,
             more_scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` per query of two ranked candidate lists (keys and scores, a row per
    query), the first list's candidates first among equal scores."""
    keys = np.concatenate([keys, more_keys], axis=1)
    scores = np.concatenate([scores, more_scores.astype(np.float32)], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(keys, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _unique_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First position of each distinct row of ``codes``, and each row's distinct-row number."""
    if codes.dtype.kind == "f":
        codes = codes + codes.dtype.type(0)  # -0.0 -> 0.0: equal vectors, equal bytes
    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.dtype.itemsize
                                                      * codes.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
