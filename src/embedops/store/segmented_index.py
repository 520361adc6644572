"""An ANN index of bounded segments: HNSW graphs of at most ``segment_size`` points each,
filled one after another, searched together.

An HNSW insert is a search of the graph at ``expansion_add`` depth; as one graph grows,
the distances such a search computes grow and each costs more (the graph outgrows the
CPU caches), so the insert rate of a 1M build falls to ~0.38 of its start on the
store's settings (docs/benchmarks-store.md, "One graph or bounded segments"). A
collection's index is therefore kept in bounded segments (``index_params.segment_size``,
``catalog.DEFAULT_SEGMENT_SIZE`` unless the collection sets it; 0, or a collection made
before segments were the default, keeps one graph): new points go to the last segment
(the *growing* one, with its own pending segment and merges); once it holds
``segment_size`` points a new one is started and the full ones are *sealed*: they take
no new points, only removals (a replaced point leaves its sealed segment and joins the
growing one). A search runs in every segment and keeps the best ``k`` by score; its
depth (asked, set by the collection, or the default for one graph of all the points)
is shared among the segments by their sizes (``_depths``), so together they pass about
as many nodes as one graph would. A filtered search runs in the segments that hold the
filter's matches, each passing its share of the matches a search must pass.

Every segment is a whole ``HnswIndex`` (shared nodes for identical vectors, the pending
segment, int8 codes, restricted searches, copies off the lock); their shared nodes take
key ranges of their own (``SEGMENT_GROUPS`` apart), so a node key names its segment. A
checkpoint writes every segment's files under one manifest (``checkpoint_files``,
format 4). The trade: searches cost one graph search per segment, each in a smaller
graph (docs/benchmarks-store.md, "Bounded segments by default"); builds keep their
rate.

``new_index`` and ``load_index`` choose the layout from the collection's parameters.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embedops.errors import IndexFailure
from embedops.search_depth import default_depth
from embedops.store import checkpoint_files
from embedops.store.checkpoint_files import IndexImage, SegmentsImage
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import (
    DEFAULT_PARAMS,
    GROUP_BASE,
    HnswIndex,
    OffLockInsert,
    candidates,
    followed,
)
from embedops.store.protocol import DEFAULT_K, Hit

SEGMENT_GROUPS = 1 << 40  # shared-node keys each segment may use
LAST_GROUP_BASE = (1 << 63) - SEGMENT_GROUPS  # (int64 node keys)
SPLITS_KEPT = 8  # filters' matches kept split by segment (``_split``) ...
SPLITS_MAX_BYTES = 64 << 20  # ... within this many bytes of keys


class SegmentedIndex:
    """Bounded HNSW segments over int row keys, with ``HnswIndex``'s interface.

    ``segments`` lists them oldest first; the last one takes new points.
    """

    def __init__(self, dim: int, metric: str, dtype: str, params: dict[str, Any],
                 clip: float | None, segments: list[HnswIndex] | None = None) -> None:
        self.dim, self.metric, self.dtype, self.clip = dim, metric, dtype, clip
        self.params = {**DEFAULT_PARAMS, **params}
        self.segment_size = int(self.params["segment_size"])
        self._given = dict(params)
        self.segments = segments or [self._new_segment(GROUP_BASE)]
        # moved on by every write (the points each segment holds change): the filters'
        # matches split by segment are kept while it stays (``_split``; searches run
        # side by side, so the kept splits have a lock of their own)
        self._version = 0
        self._splits: OrderedDict[int, tuple[np.ndarray, int, list[tuple[HnswIndex,
                                                                         np.ndarray]]]] = \
            OrderedDict()
        self._splits_lock = threading.Lock()
        # segment (by group base) -> its version when a checkpoint wrote it, its entry
        # in that checkpoint's manifest and the folder: a later checkpoint keeps those
        # files while the segment stays as it was and they are there (``_images``;
        # sealed segments mostly stay)
        self._saved: dict[int, tuple[int, dict[str, Any], Path]] = {}

    def _new_segment(self, group_base: int) -> HnswIndex:
        if group_base > LAST_GROUP_BASE:
            raise IndexFailure("no key range left for another segment's shared nodes; "
                               "a larger segment_size (or a compaction) makes room")
        return HnswIndex(self.dim, self.metric, self.dtype, self._given, self.clip,
                         group_base=group_base)

    # --- sizes ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Points (row keys) in the index, pending ones included."""
        segments = self.segments
        if len(segments) == 1:  # (every search asks: ``Searcher.point_count``)
            return len(segments[0])
        return sum(len(segment) for segment in segments)

    @property
    def nodes(self) -> int:
        """Search candidates: graph nodes (distinct vectors) plus pending points."""
        return sum(segment.nodes for segment in self.segments)

    @property
    def pending(self) -> int:
        """Points written but not merged into their segment's graph yet."""
        return sum(segment.pending for segment in self.segments)

    @property
    def removed(self) -> int:
        """Tombstones in all segments' graphs until compaction rebuilds them."""
        return sum(segment.removed for segment in self.segments)

    @property
    def rewritten_nodes(self) -> int:
        """Nodes the next checkpoint would write: those of the segments changed since a
        checkpoint last wrote them (``_images``). A build changes its growing segment
        alone; replacements scattered over the collection change them all."""
        return sum(segment.nodes for segment in self.segments
                   if self._saved_as_is(segment) is None)

    @property
    def graphs(self) -> list[HnswGraph]:
        """Every segment's graph, oldest first."""
        return [segment.index for segment in self.segments]

    @property
    def mapped(self) -> bool:
        """Does any segment's graph map its checkpoint file?"""
        return any(segment.mapped for segment in self.segments)

    @property
    def memory_bytes(self) -> int:
        """Resident bytes of every segment (each counts the filters' matches it keeps,
        the parts of ``_split``, with them)."""
        return sum(segment.memory_bytes for segment in self.segments)

    @property
    def search_depth(self) -> int:
        """The depth a search for the default ``k`` (10) that asks for none passes, over
        all segments together: ``_default_depth``, shared among them by ``_depths``;
        of int8 codes, at least what the segments with graph nodes pass to return
        their rescoring candidates (``oversample`` × 10 each: ``search``), so that
        asking this depth searches about as asking none does."""
        depth = self._default_depth()
        if self.dtype == "int8" and "expansion_search" not in self._given:
            rescored = int(self.params["oversample"]) * DEFAULT_K
            depth = max(depth, rescored * sum(1 for segment in self.segments
                                              if len(segment.index)))
        return depth

    def _default_depth(self) -> int:
        """The depth ``_depths`` shares when none is asked: the collection's
        ``expansion_search`` if set, else the default for one graph of all the
        segments' live nodes."""
        if "expansion_search" in self._given:
            return int(self.params["expansion_search"])
        return default_depth(sum(len(segment.index) for segment in self.segments))

    @property
    def frozen(self) -> bool:
        """Is a checkpoint writing some segment's graph now (``freeze``)?"""
        return any(segment.frozen for segment in self.segments)

    # --- writes --------------------------------------------------------------------------

    def add(self, keys: np.ndarray, vectors: np.ndarray, defer: bool = False) -> None:
        """Insert or replace points: each leaves the segment that held it first (the
        growing one included: a batch may fill it and go on into a new one), then they
        fill the growing segment, a new one started whenever it is full. A key given
        twice keeps its last vector (two would land in two segments across a boundary)."""
        self._version += 1
        keys = np.asarray(keys, dtype=np.int64)
        if len(keys) == 0:
            return
        if len(np.unique(keys)) != len(keys):
            last = {key: row for row, key in enumerate(keys.tolist())}
            rows = np.sort(np.fromiter(last.values(), dtype=np.int64, count=len(last)))
            keys, vectors = keys[rows], np.asarray(vectors)[rows]
        self._remove_held(keys)
        start = 0
        while start < len(keys):
            growing = self.segments[-1]
            room = self.segment_size - len(growing)
            if room <= 0:
                self.segments.append(self._new_segment(growing.group_base
                                                       + SEGMENT_GROUPS))
                continue
            end = min(len(keys), start + room)
            growing.add(keys[start:end], vectors[start:end], defer=defer)
            start = end

    def remove(self, keys: np.ndarray) -> int:
        """Remove the points ``keys`` that are present; returns how many were removed."""
        self._version += 1
        keys = np.asarray(keys, dtype=np.int64)
        if len(keys) == 0:
            return 0
        return self._remove_held(keys)

    def _remove_held(self, keys: np.ndarray) -> int:
        """Remove ``keys`` from the segments holding some of them (the others are left
        alone: a removal moves a segment's version on, which drops what it keeps for
        filtered searches); returns how many points were removed."""
        return sum(segment.remove(keys[mine]) for segment, mine in self._holders(keys)[0])

    def merge(self, limit: int) -> int:
        """Move up to ``limit`` pending points of the oldest segment with points pending
        into its graph; returns how many moved (one segment a call, so a merge due to
        go through a copy of a graph, ``copy_due``, is always the next one's)."""
        for segment in self.segments:
            if segment.pending:
                return segment.merge(limit)
        return 0

    def merge_all(self) -> None:
        for segment in self.segments:
            segment.merge_all()

    def copy_due(self, count: int) -> bool:
        """Would the next merge of ``count`` points (into the oldest segment with points
        pending) copy all of its graph's arrays?"""
        for segment in self.segments:
            if segment.pending:
                return segment.copy_due(min(count, segment.pending))
        return False

    def off_lock_insert(self, limit: int) -> OffLockInsert | None:
        """``HnswIndex.off_lock_insert`` of the oldest segment with points pending."""
        for segment in self.segments:
            if segment.pending:
                job = segment.off_lock_insert(limit)
                if job is not None:
                    job.owner = segment
                return job
        return None

    def make_copy(self, job: OffLockInsert) -> None:
        job.owner.make_copy(job)

    def finish_off_lock_insert(self, job: OffLockInsert) -> Any:
        """Take the job's copy in its segment, if that segment is still this index's
        and nothing changed (``HnswIndex.finish_off_lock_insert``)."""
        if not any(segment is job.owner for segment in self.segments):
            return None
        return job.owner.finish_off_lock_insert(job)

    # --- searches ------------------------------------------------------------------------

    def _searched(self) -> list[HnswIndex]:
        return [segment for segment in self.segments if len(segment)]

    def _depths(self, ef: int | None) -> list[tuple[HnswIndex, int | None]]:
        """Each segment searched and its depth: a search's depth (``ef``, else
        ``_default_depth``) is the whole collection's, shared among the segments by
        their live graph nodes (each still passes at least ``k``: ``HnswIndex._depth``),
        so that the segments together pass about as many nodes as one graph of them
        all would. Each returns its best ``k``, and the best ``k`` overall hold on
        average ``k / segments`` of any one's, the nearest it finds most surely; where
        a query's neighbours sit in one segment (a corpus written source by source),
        that segment searches shallower than one graph of its own size would, and
        its graph is better than one graph of everything written in that order
        (docs/benchmarks-store.md, "Bounded segments by default")."""
        searched = self._searched()
        if len(searched) <= 1:
            return [(segment, ef) for segment in searched]
        live = [len(segment.index) for segment in searched]  # (live graph nodes)
        whole = max(sum(live), 1)
        depth = ef or self._default_depth()
        return [(segment, max(1, math.ceil(depth * nodes / whole)))
                for segment, nodes in zip(searched, live, strict=True)]

    def search(self, queries: np.ndarray, k: int, ef: int | None = None,
               threads: int = 0, least: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` point row keys and scores per query over every segment; -1 pads.
        ``least`` (``HnswIndex.search``): where a depth is asked (``ef``, or the
        collection's ``expansion_search``), each segment returns as many candidates as
        its share of that depth passes, at least ``least`` and at most ``k``; with no
        depth asked, ``k`` each, as the default depth's recall was set with."""
        if not (ef or "expansion_search" in self._given):  # (no depth asked)
            least = None
        depths = self._depths(ef)
        if len(queries) == 1 and len(depths) > 1 and k >= 1:
            found = self._search_row(queries, k, depths, least)
            if found is not None:
                return found[0][None, :], found[1][None, :]
        return _best(queries, k, [segment.search(queries, k, depth, threads, least)
                                  for segment, depth in depths])

    def _search_row(self, query: np.ndarray, k: int,
                    depths: list[tuple[HnswIndex, int | None]], least: int | None
                    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``search`` of one query (a ``(1, dim)`` row) over several segments with the
        least interpreter work a segment: the query made codes once, each segment's
        compiled search writing its candidates (``candidates``) into one pair of
        arrays (``HnswIndex.search_row_into``), their scores made similarities once
        and the best ``k`` of them all taken once, as ``_best`` takes them (-1 pads
        at the end). At 10M in 50 segments each segment's own way cost ~20 µs of ~70
        (docs/benchmarks-store.md, "One query over many segments in one pass").
        ``search_one`` (a float graph's single search) keeps each segment's lists: at
        five segments this pass's arrays cost more than it saves (0.94×, the same
        section). None, before any segment is searched, where one needs its own way
        (``HnswIndex.takes_row``: pending points, more asked than its live nodes or
        than the compiled search takes); None after, where a shared node is found
        (its points are listed there)."""
        counts = [candidates(k, depth, least) for _, depth in depths]
        if not all(segment.takes_row(count)
                   for (segment, _), count in zip(depths, counts, strict=True)):
            return None
        keys = np.empty(sum(counts), dtype=np.int64)
        scores = np.empty(len(keys), dtype=np.float32)
        codes = np.require(self.segments[0].codes(query), np.float32,
                           ["C_CONTIGUOUS", "ALIGNED"])
        start = 0
        for (segment, depth), count in zip(depths, counts, strict=True):
            end = start + count
            segment.search_row_into(codes, count, depth, keys[start:end], scores[start:end])
            start = end
        if keys.max() >= GROUP_BASE:  # (every segment's shared nodes lie above it)
            return None
        self.segments[0].similarities(scores)  # (every segment scores alike)
        scores[keys < 0] = -math.inf
        order = np.argsort(-scores, kind="stable")[:k]
        return keys[order], scores[order]

    def search_nodes(self, queries: np.ndarray, k: int, ef: int | None = None,
                     threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` graph nodes and scores per query over every segment (``members``
        gives a node's points); -1 pads."""
        return _best(queries, k, [segment.search_nodes(queries, k, depth, threads)
                                  for segment, depth in self._depths(ef)])

    def search_one(self, query: np.ndarray, k: int, ef: int | None = None
                   ) -> tuple[list[int], list[float]]:
        """``HnswIndex.search_one`` over every segment: the best ``k`` of their
        results, padding dropped."""
        segments = self.segments
        if len(segments) == 1:  # (one that has not outgrown its first segment: as one graph)
            return segments[0].search_one(query, k, ef)
        depths = self._depths(ef)
        if len(depths) == 1:
            return depths[0][0].search_one(query, k, ef)
        found: list[tuple[float, int]] = []
        for segment, depth in depths:
            keys, values = segment.search_one(query, k, depth)
            found += [(value, key) for key, value in zip(keys, values, strict=True)
                      if key >= 0]
        found.sort(key=lambda pair: -pair[0])
        return [key for _, key in found[:k]], [value for value, _ in found[:k]]

    def search_hits(self, query: np.ndarray, k: int, ef: int | None,
                    cached: dict[int, Any], scale: float
                    ) -> list[Hit] | tuple[list[int], list[float]]:
        """``HnswIndex.search_hits`` of the one segment that has not been outgrown; over
        several, ``search_one``'s keys and scores."""
        segments = self.segments
        if len(segments) == 1:
            return segments[0].search_hits(query, k, ef, cached, scale)
        return self.search_one(query, k, ef)

    def direct_hits(self, k: int, ef: int | None
                    ) -> tuple[Any, int, Callable[..., tuple[list[int], list[float]]]] | None:
        """``HnswIndex.direct_hits`` of the one segment that has not been outgrown (what
        ``search_hits`` hands a search to); None over several."""
        segments = self.segments
        return segments[0].direct_hits(k, ef) if len(segments) == 1 else None

    def search_among(self, queries: np.ndarray, k: int, keys: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """``HnswIndex.search_among`` in each segment holding some of ``keys``; None
        when no segment holds one of them."""
        split = self._split(keys)
        if split is None:
            return None
        found = [segment.search_among(queries, k, part) for segment, part in split]
        if any(result is None for result in found):
            return None
        return _best(queries, k, [result for result in found if result is not None])

    def search_within(self, queries: np.ndarray, k: int, keys: np.ndarray,
                      ef: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """``HnswIndex.search_within`` in each segment holding some of ``keys``, each
        passing its share of the matches a search must pass (``_depth_within``), not
        the whole; None when some key is in no segment."""
        split = self._split(keys)
        if split is None:
            return None
        total = max(len(keys), 1)
        depths = {id(segment): depth for segment, depth in self._depths(ef)}
        found = [segment.search_within(queries, k, part, depths[id(segment)],
                                       share=len(part) / total)
                 for segment, part in split]
        if any(result is None for result in found):
            return None
        return _best(queries, k, [result for result in found if result is not None])

    def restricted(self, keys: np.ndarray) -> bool:
        """Whether what ``search_within`` needs for ``keys`` is kept in every segment."""
        split = self._split(keys, make=False)
        return split is not None and all(segment.restricted(part) for segment, part in split)

    def restrict(self, keys: np.ndarray) -> bool:
        """Make (or find kept) what ``search_within`` needs for ``keys`` in every
        segment that holds some of them; False when one is not held anywhere or a
        segment cannot keep its part."""
        split = self._split(keys)
        return split is not None and all(segment.restrict(part) for segment, part in split)

    def _split(self, keys: np.ndarray, make: bool = True
               ) -> list[tuple[HnswIndex, np.ndarray]] | None:
        """``keys`` (a filter's matches, the same array for every search of the filter
        until a write) split by the segment holding each, kept for that array while no
        write comes, so each segment's kept matches (``match_nodes``, by the identity of
        its part) serve the next search too; None when some key is in no segment (or,
        with ``make`` false, when the split is not kept)."""
        keys = np.asarray(keys, dtype=np.int64)
        version = self._version
        with self._splits_lock:
            kept = self._splits.get(id(keys))
            if kept is not None and kept[0] is keys and kept[1] == version:
                self._splits.move_to_end(id(keys))
                return kept[2]
        if not make:
            return None
        holders, left = self._holders(keys)
        if left.any():
            return None
        split = [(segment, keys[mine]) for segment, mine in holders]
        if 2 * keys.nbytes > SPLITS_MAX_BYTES:
            return split  # (not kept: each search splits it again)
        with self._splits_lock:
            for stale in [key for key, (_, held, _) in self._splits.items()
                          if held != version]:
                del self._splits[stale]
            self._splits[id(keys)] = (keys, version, split)
            while len(self._splits) > SPLITS_KEPT or sum(
                    2 * held.nbytes for held, _, _ in self._splits.values()) > SPLITS_MAX_BYTES:
                self._splits.popitem(last=False)
        return split

    def _holders(self, keys: np.ndarray, by_node: bool = False
                 ) -> tuple[list[tuple[HnswIndex, np.ndarray]], np.ndarray]:
        """Each segment holding some of ``keys`` (points, or graph nodes ``by_node``)
        with the mask of those it holds, oldest first, and the mask of the keys no
        segment holds."""
        left = np.ones(len(keys), dtype=bool)
        holders: list[tuple[HnswIndex, np.ndarray]] = []
        for segment in self._searched():
            if not left.any():
                break
            mine = np.zeros(len(keys), dtype=bool)
            mine[left] = (segment.index.contains if by_node else segment.holds)(keys[left])
            if mine.any():
                holders.append((segment, mine))
                left &= ~mine
        return holders, left

    def members(self, node: int) -> Any:
        """The row keys of the points a node holds (insertion order)."""
        if node < GROUP_BASE:
            return (node,)
        for segment in self.segments:
            if segment.group_base <= node < segment.group_base + SEGMENT_GROUPS:
                return segment.members(node)
        return ()

    # --- vectors -------------------------------------------------------------------------

    def stored(self, keys: np.ndarray, by_node: bool = False) -> np.ndarray:
        """The vectors the index holds for points ``keys`` (or graph nodes, ``by_node``),
        as ``HnswIndex.stored`` gives them; zeros for a key no segment holds."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        for segment, mine in self._holders(keys, by_node)[0]:
            out[mine] = segment.stored(keys[mine], by_node)
        return out

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as the graphs hold them (int8 codes for int8 indexes), as float32."""
        return self.segments[0].codes(vectors)

    def matches_vectors(self, keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Per key: does the index hold ``vectors`` (as this index would encode them)?"""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros(len(keys), dtype=bool)
        for segment, mine in self._holders(keys)[0]:
            out[mine] = segment.matches_vectors(keys[mine], vectors[mine])
        return out

    def keys(self) -> np.ndarray:
        """Every point (row key) currently in the index."""
        return np.concatenate([segment.keys() for segment in self.segments])

    # --- checkpoints ---------------------------------------------------------------------

    def freeze(self, seq: int) -> SegmentsImage:
        """The index as of change ``seq`` for a checkpoint, the graphs to be written
        frozen until ``thaw`` (``HnswIndex.freeze``)."""
        try:
            return self._images(seq, freeze=True)
        except BaseException:
            self.thaw()
            raise

    def thaw(self) -> None:
        for segment in self.segments:
            segment.thaw()

    def image(self, seq: int) -> SegmentsImage:
        return self._images(seq, freeze=False)

    def _images(self, seq: int, freeze: bool) -> SegmentsImage:
        """Each segment's image, or, for one unchanged since a checkpoint wrote it,
        that checkpoint's entry for it (its files kept: ``checkpoint_files``)."""
        parts: list[IndexImage | dict[str, Any]] = []
        for segment in self.segments:
            saved = self._saved_as_is(segment)
            if saved is not None and all(
                    path.is_file() for path in checkpoint_files.manifest_files(saved[2],
                                                                              saved[1])):
                parts.append(saved[1])
            else:
                parts.append(segment.freeze(seq) if freeze else segment.image(seq))
        return SegmentsImage(seq, parts, self._manifest(),
                             tags=[(s.group_base, s.version) for s in self.segments])

    def _saved_as_is(self, segment: HnswIndex) -> tuple[int, dict[str, Any], Path] | None:
        """What a checkpoint noted of ``segment`` (``written``) while the segment is as
        that checkpoint wrote it, else None."""
        saved = self._saved.get(segment.group_base)
        return saved if saved is not None and saved[0] == segment.version else None

    def written(self, image: SegmentsImage) -> None:
        """A checkpoint of ``image`` is on disk: note each segment's entry in it, to
        keep its files while the segment does not change."""
        if image.written is None or image.tags is None or image.folder is None:
            return
        folder = image.folder
        self._saved = {base: (version, entry, folder) for (base, version), entry
                       in zip(image.tags, image.written, strict=True)}

    def _manifest(self) -> dict[str, Any]:
        return {"dim": self.dim, "metric": self.metric, "dtype": self.dtype,
                "clip": self.clip, "size": len(self), "nodes": self.nodes - self.pending,
                "removed": self.removed, "segment_size": self.segment_size,
                "params": self.params}

    def save(self, folder: Path, cid: int, seq: int) -> Path:
        """Checkpoint the index as covering change ``seq`` now, pending points merged
        first; returns the first graph file's path."""
        self.merge_all()
        if any(saved[2] != folder for saved in self._saved.values()):
            self._saved = {}  # (another folder: every segment written there)
        image = self.image(seq)
        path = checkpoint_files.write(folder, cid, image)
        self.written(image)
        return path

    @classmethod
    def from_manifest(cls, folder: Path, manifest: dict[str, Any], dim: int, metric: str,
                      dtype: str, params: dict[str, Any], clip: float | None
                      ) -> tuple[SegmentedIndex, int] | None:
        """The index a checkpoint manifest names, and its seq: a manifest of segments,
        or one graph's (taken as the first segment); None if it does not fit."""
        parts = manifest.get("segments")
        if parts is None:
            one = HnswIndex.from_manifest(folder, manifest, dim, metric, dtype, params, clip)
            return None if one is None else (cls(dim, metric, dtype, params, clip, [one[0]]),
                                             one[1])
        if not isinstance(parts, list) or not parts or not all(
                isinstance(part, dict) for part in parts):
            return None
        top = {key: value for key, value in manifest.items() if key != "segments"}
        segments: list[HnswIndex] = []
        for part in parts:
            loaded = HnswIndex.from_manifest(folder, {**top, **part}, dim, metric, dtype,
                                             params, clip)
            if loaded is None:
                return None
            segments.append(loaded[0])
        bases = [segment.group_base for segment in segments]
        if bases != sorted(set(bases)) or bases[-1] > LAST_GROUP_BASE or any(
                segment.next_group > segment.group_base + SEGMENT_GROUPS
                for segment in segments):
            return None  # (key ranges that overlap: rebuilt from SQLite)
        index = cls(dim, metric, dtype, params, clip, segments)
        index._saved = {segment.group_base: (segment.version, {
            **part, "pending_points": segment.pending}, folder) for segment, part
            in zip(segments, parts, strict=True)}
        return index, int(manifest["seq"])


AnnIndex = HnswIndex | SegmentedIndex


def new_index(dim: int, metric: str, dtype: str, params: dict[str, Any],
              clip: float | None) -> AnnIndex:
    """An empty index for a collection: bounded segments when ``params`` sets
    ``segment_size``, else one graph."""
    if params.get("segment_size"):
        return SegmentedIndex(dim, metric, dtype, params, clip)
    return HnswIndex(dim, metric, dtype, params, clip)


def load_index(folder: Path, cid: int, dim: int, metric: str, dtype: str,
               params: dict[str, Any], clip: float | None) -> tuple[AnnIndex, int] | None:
    """Collection ``cid``'s checkpointed index and its seq, in the form ``params`` asks
    for (``new_index``), or None if absent, stale, unreadable or of the other form (a
    checkpoint of segments for a collection of one graph: rebuilt from SQLite)."""
    if params.get("segment_size"):
        return followed(folder, cid, lambda manifest: SegmentedIndex.from_manifest(
            folder, manifest, dim, metric, dtype, params, clip))
    return HnswIndex.load(folder, cid, dim, metric, dtype, params, clip)


def _best(queries: np.ndarray, k: int, found: list[tuple[np.ndarray, np.ndarray]]
          ) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` per query (at most as many as found) of the segments' ranked keys
    and scores (-1 pads, whatever its score), the earlier segment's first among equal
    scores; -1 pads with score -inf."""
    if not found:
        return (np.full((len(queries), 0), -1, dtype=np.int64),
                np.full((len(queries), 0), -math.inf, dtype=np.float32))
    if len(found) == 1:
        return found[0]
    keys = np.concatenate([keys for keys, _ in found], axis=1)
    scores = np.concatenate([scores.astype(np.float32, copy=False) for _, scores in found],
                            axis=1)
    scores = np.where(keys >= 0, scores, np.float32(-math.inf))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(keys, order, axis=1), np.take_along_axis(scores, order, axis=1)
