"""Search planning for the embedded store: exact, HNSW, filtered HNSW, rescoring.

Plans, in order:

* ``exact=True`` or a collection below ``exact_threshold`` points: exact scoring with numpy
  over all rows (or the rows matching the filter).
* a filter matching at most ``max(selective_rows, 2% of points)`` rows: exact scoring over
  just those candidates, with the vectors the loaded index holds (int8: the codes choose
  ``oversample * k`` candidates, rescored from SQLite).
* any other filter whose matching keys are held or worth reading now (``filter_costs``:
  once the oversampled searches of it since the last write have cost what reading
  them does), when they can be kept (``filter_matches``): the HNSW search kept within a
  bitmap of its matches' nodes, so every candidate matches (int8: ``oversample * k``
  candidates, rescored from SQLite).
* any other filter: HNSW search oversampled by ``points / matches`` (x2), candidates checked
  against the filter in SQL; the oversampling grows 4x until ``k`` matches are found, and
  falls back to exact scoring over the candidates when it would exceed half the index.
* no filter: HNSW search; int8 indexes return ``oversample * k`` candidates that are
  rescored with the full-precision vectors from SQLite, read in one result row
  (``vector_reads``); where a depth is asked, only as many as it passes, at least ``k``
  (each segment its share: ``hnsw_index.candidates``). One query of a float graph
  takes a shorter path with the same answers (``_hnsw_one``).

Points that share a vector share one graph node (``hnsw_index``): a node found expands to
its points, and a filtered search checks each member of a shared node against the filter.
Whenever the graph yields fewer than ``k`` hits although at least ``k`` points (matching
points, under a filter) exist, the query is answered exactly instead: ``k`` hits come back
whenever ``k`` points exist.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
import orjson

from embedops.errors import IndexFailure
from embedops.store import quantization
from embedops.store.catalog import POINTS_WITH_VECTORS, CollectionRow, totals, vector_bytes
from embedops.store.exact import DenseCache, scores, top_k
from embedops.store.filter_costs import FilterCosts
from embedops.store.filter_matches import Filter, FilterMatches, filter_key
from embedops.store.hit_cache import HitCache
from embedops.store.hit_rows import cached_hits
from embedops.store.hnsw_index import DEFAULT_PARAMS, GROUP_BASE
from embedops.store.index_manager import IndexManager, LiveIndex
from embedops.store.protocol import Hit
from embedops.store.segmented_index import AnnIndex
from embedops.store.vector_reads import keys_in, stored_vectors

log = logging.getLogger(__name__)

SELECTIVE_ROWS = 2_000
SCAN_PAGE = 20_000
WARM_DENSE_BYTES = 256 << 20  # float32 vectors held for exact search while a graph loads
MEMBER_PAGE = 256  # shared nodes larger than this are checked against a filter in pages


class DirectPlan(NamedTuple):
    """A plain single search's way straight to the compiled graph search
    (``Searcher.direct_plan``): ``HnswIndex.direct_hits``'s view, depth and ranking of a
    short answer, and the collection's points."""

    view: Any
    depth: int
    ranked: Callable[..., tuple[list[int], list[float]]]
    n: int


Where = tuple[str, list[Any]] | None


class Searcher:
    """Runs searches for one store handle, from any number of threads at once.

    SQL goes through ``connection()``, which the store answers with the calling thread's
    connection (a read's own, see ``EmbeddedStore.conn``). The caller holds the index
    lock shared and has made sure the collection's index is loaded
    (``IndexManager.ready``); the caches here tolerate races (the worst case is a count
    read twice).
    """

    def __init__(self, connection: Callable[[], sqlite3.Connection],
                 indexes: IndexManager, hit_cache: HitCache | None = None) -> None:
        self._connection = connection
        self.indexes = indexes
        self.hit_cache = hit_cache if hit_cache is not None else HitCache()
        self.dense = DenseCache()
        self._counts: dict[int, tuple[int, int]] = {}
        self._matches: dict[tuple[int, int, str, str], int] = {}  # (seq, *filter_key)
        self._counted: dict[Filter, int] = {}  # the last count of a filter
        self.filter_matches = FilterMatches()
        self.filter_costs = FilterCosts()
        self._corrupt_vectors: set[int] = set()  # collections warned of a corrupt vector

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connection()

    def point_count(self, row: CollectionRow, index_held: bool = False) -> int:
        """Live points in the collection. With ``index_held`` (the caller holds the index
        lock), the loaded index's own count when that index reflects ``row``'s change
        sequence: it holds exactly the points committed at that sequence. So does an
        index ahead of ``row`` (a search that read the catalog before a write the index
        took by the time the search got the lock): it holds every change ``row`` shows
        and the later ones, as SQLite does by then. An index behind ``row`` would
        undercount. Otherwise the count every write keeps in the catalog row
        (``catalog.totals``: one row; a ``COUNT(*)`` read the collection's whole id
        index, 1.4 s for 1M points after a cold open), cached under the change sequence
        it was read at (a later commit than ``row``'s, maybe, as SQLite holds by then)."""
        if index_held:
            live = self.indexes.live.get(row.cid)
            if live is not None and live.seq >= row.seq and live.index.clip == row.clip:
                return len(live.index)
        cached = self._counts.get(row.cid)
        if cached is None or cached[0] != row.seq:
            held = totals(self.conn, row.cid)
            cached = (held.seq, held.points)
            self._counts[row.cid] = cached
        return cached[1]

    def match_count(self, row: CollectionRow, where: tuple[str, list[Any]],
                    keep_up_to: int = 0) -> int:
        """Rows matching a compiled filter; cached per change sequence for planning. When
        at most ``keep_up_to`` rows match, their keys are read instead of counted and
        kept for the search that follows (``filter_matches``): one pass over the
        collection, not two. A filter that matched more than that at its last count is
        counted at once (reading keys until there are too many would cost up to a pass
        more, for filters just past the limit)."""
        key = _count_key(row, where)
        if key not in self._matches:
            same: Filter = key[1:]  # (the filter at any sequence)
            n = self._count_matches(row, where, keep_up_to, self._counted.get(same))
            if len(self._matches) >= 256:
                self._matches.clear()
            if len(self._counted) >= 256:
                self._counted.clear()
            self._matches[key] = self._counted[same] = n
            return n
        return self._matches[key]

    def _count_matches(self, row: CollectionRow, where: tuple[str, list[Any]],
                       keep_up_to: int, before: int | None) -> int:
        held = self.filter_matches.get(row.cid, row.seq, where)
        if held is not None:
            return len(held)
        if before is None or before <= keep_up_to:
            first = self._matching_rowkeys(row, where, limit=keep_up_to + 1)
            if len(first) <= keep_up_to:  # (all of them)
                self.filter_matches.put(row.cid, row.seq, where, first)
                return len(first)
        (n,) = self.conn.execute(f"SELECT COUNT(*) FROM points WHERE cid = ? AND {where[0]}",
                                 (row.cid, *where[1])).fetchone()
        return int(n)

    def search(self, row: CollectionRow, queries: np.ndarray, k: int, where: Where,
               ef: int | None, exact: bool) -> list[list[Hit]]:
        """Top-``k`` hits per query for the plan the module docstring describes."""
        n = self.point_count(row, index_held=True)
        if n == 0:
            return [[] for _ in queries]
        threshold = _param(row, "exact_threshold")
        if exact or n <= threshold:
            return self._exact(row, queries, k, where, small=n <= threshold)
        oversample = _param(row, "oversample")
        if where is None:
            if len(queries) == 1 and row.dtype != "int8":
                return [self._hnsw_one(row, self.indexes.loaded(row), queries, 1.0, k, ef,
                                       n)]
            return self._hnsw(row, queries, k, ef, oversample, n)
        selective = max(SELECTIVE_ROWS, n // 50)
        matches = self.match_count(row, where, keep_up_to=selective)
        if matches == 0:
            return [[] for _ in queries]
        if matches <= selective:
            return self._selective(row, queries, k, where, oversample)
        if self.filter_matches.keeps(matches):
            keys = self.filter_matches.get(row.cid, row.seq, where)
            if keys is not None or self.filter_costs.read_due(row.cid, row.seq, where,
                                                              matches, len(queries)):
                within = self._within(row, queries, k, where, ef, oversample, n, matches,
                                      keys)
                if within is not None:
                    return within
        started = time.perf_counter()
        out = [self._filtered_hnsw(row, q, k, where, ef, n, matches) for q in queries]
        self.filter_costs.searched(row.cid, row.seq, where, time.perf_counter() - started,
                                   len(queries))
        return out

    def search_one(self, row: CollectionRow, live: LiveIndex, query: np.ndarray,
                   scale: float, k: int, ef: int | None) -> list[Hit]:
        """``search`` of one unfiltered query as ``quantization.one_query`` gives it: the
        row as the caller passed it and the factor that scales its scores to those of
        the prepared query (under cosine, its inverse norm). ``live``: the collection's
        loaded index, as ``IndexManager.ready`` found it for ``row``."""
        # (``point_count``'s answer, the index already in hand)
        n = len(live.index) if live.seq >= row.seq else self.point_count(row)
        if row.dtype == "int8" or n == 0 or n <= _param(row, "exact_threshold"):
            return self.search(row, self._prepared(row, query), k, None, ef, False)[0]
        return self._hnsw_one(row, live.index, query, scale, k, ef, n)

    @staticmethod
    def _prepared(row: CollectionRow, query: np.ndarray) -> np.ndarray:
        """``query`` as ``quantization.prepare`` makes every query (a unit row under cosine)."""
        return quantization.prepare(query, row.dim, row.metric)

    def search_while_loading(self, row: CollectionRow, queries: np.ndarray, k: int,
                             where: Where) -> list[list[Hit]]:
        """Exact top-``k`` while the collection's graph loads in the background: from the
        vectors held in memory when they fit in ``WARM_DENSE_BYTES`` (read once, then
        a BLAS product per query), else by scanning SQLite."""
        n = self.point_count(row)
        if n == 0:
            return [[] for _ in queries]
        return self._exact(row, queries, k, where, small=n * row.dim * 4 <= WARM_DENSE_BYTES)

    # --- exact -------------------------------------------------------------------------

    def _exact(self, row: CollectionRow, queries: np.ndarray, k: int, where: Where,
               small: bool) -> list[list[Hit]]:
        if small:
            dense = self.dense.get(self.conn, row)
            keys, matrix = dense.keys, dense.matrix
            if where is not None:
                chosen = self._matching_rowkeys(row, where)
                # Rows committed by another process after the cache was read are skipped.
                pos = np.clip(np.searchsorted(keys, chosen), 0, max(len(keys) - 1, 0))
                pos = pos[keys[pos] == chosen] if len(keys) else pos[:0]
                keys, matrix = keys[pos], matrix[pos]
                idx, vals = top_k(scores(queries, matrix, row.metric), k)
                return self._checked_hits(row, queries, keys[idx], vals, where, k, len(keys))
            idx, vals = top_k(scores(queries, matrix, row.metric), k)
            return self._hits(row, keys[idx], vals)
        return self._exact_scan(row, queries, k, where)

    def _selective(self, row: CollectionRow, queries: np.ndarray, k: int,
                   where: tuple[str, list[Any]], oversample: int) -> list[list[Hit]]:
        """A filter few points match: score every matching point, with the vectors the
        loaded index holds, on its codes (``HnswIndex.search_among``: float32 and float16
        graphs hold the stored values exactly; an int8 graph's codes choose
        ``oversample * k`` candidates that are rescored with the float vectors from
        SQLite). Reading every match's vector from SQLite instead took ~1 s a query for
        10,000 matches at 1M points. Matches the index does not hold yet (committed, not
        yet applied) send the query to the SQLite scan."""
        index = self.indexes.loaded(row)
        keys = self._matching_rowkeys(row, where)
        if len(keys) == 0:
            return [[] for _ in queries]
        rescore = row.dtype == "int8"
        found = index.search_among(queries, k * oversample if rescore else k, keys)
        if found is None:
            return self._exact_scan(row, queries, k, where)
        out = self._ranked_hits(row, queries, k, where, *found, rescore=rescore)
        return self._short_answered(row, queries, out, where, k, len(keys))

    def _within(self, row: CollectionRow, queries: np.ndarray, k: int,
                where: tuple[str, list[Any]], ef: int | None, oversample: int, n: int,
                matches: int, keys: np.ndarray | None) -> list[list[Hit]] | None:
        """A broad filter whose matches are held, or worth reading (``filter_costs``):
        its matching keys read once and kept (``filter_matches``), the graph searched
        within their nodes (``HnswIndex.search_within``), so every candidate matches,
        and an int8 graph's ``oversample * k`` are rescored from SQLite as an
        unfiltered search's are. None when the index does not hold every match yet (the
        caller takes the oversampled search, ``_filtered_hnsw``); a query left short
        of ``k`` hits takes it too. ``keys``: the filter's matches kept at ``row``'s
        sequence (None: to read now)."""
        index = self.indexes.loaded(row)
        if keys is not None and not index.restricted(keys):  # (read before the lock:
            started = time.perf_counter()                   # the bitmap, now)
            if not index.restrict(keys):
                return None
            self.filter_costs.read_more(row.cid, where, time.perf_counter() - started)
        if keys is None:  # (what the read costs: the keys and the bitmap of their nodes)
            if not self.filter_costs.start_read(row.cid, where):
                return None  # (another search is reading them)
            took = None
            try:
                started = time.perf_counter()
                keys = self._read_rowkeys(row, where)
                held = index.restrict(keys)
                took = time.perf_counter() - started
            finally:
                self.filter_costs.read(row.cid, where, took)
            if not held:
                return None
        rescore = row.dtype == "int8"
        found = index.search_within(queries, k * oversample if rescore else k, keys, ef)
        if found is None:
            return None
        out = self._ranked_hits(row, queries, k, where, *found, rescore=rescore)
        for qi, hits in enumerate(out):
            if len(hits) < min(k, len(keys)):
                out[qi] = self._filtered_hnsw(row, queries[qi], k, where, ef, n, matches)
        return out

    def read_due_matches(self, row: CollectionRow, where: tuple[str, list[Any]],
                         queries: int) -> None:
        """Called before the index lock (``EmbeddedStore.search``): read a broad filter's
        matching keys, and keep them, when its oversampled searches since the last
        write have made the read due (``filter_costs``). The search under the lock then
        finds them kept and makes only the bitmap of their nodes: a writer waits for
        that (~1.1 s for 1M matches at 10M points), not for the read of the keys too
        (~3.3 s). A filter not searched at ``row``'s sequence yet is left to its search,
        which chooses the plan."""
        if self.filter_matches.get(row.cid, row.seq, where) is not None:
            return
        matches = self._matches.get(_count_key(row, where))
        if (matches is None or not self.filter_matches.keeps(matches)
                or not self.filter_costs.due_before_search(row.cid, row.seq, where,
                                                           matches, queries)
                or not self.filter_costs.start_read(row.cid, where)):
            return
        took = None
        try:
            started = time.perf_counter()
            self._read_rowkeys(row, where)
            took = time.perf_counter() - started
        finally:
            self.filter_costs.read(row.cid, where, took, bitmap_to_come=True)

    def _ranked_hits(self, row: CollectionRow, queries: np.ndarray, k: int,
                     where: tuple[str, list[Any]], ranked: np.ndarray, vals: np.ndarray,
                     rescore: bool) -> list[list[Hit]]:
        """Hits from ranked keys of matching points (a row per query, -1 pads), their
        rows read under the filter again (see ``_checked_hits``); with ``rescore`` (an
        int8 index's candidates), rescored with the float vectors read with them, ``k``
        kept. A query may come back short (points deleted since the keys were read)."""
        if not rescore:
            rows = self._fetch(ranked.ravel(), with_vectors=False, where=where)
            return [[_hit(rows[key], val) for key, val in zip(keys, scored, strict=True)
                     if key in rows][:k]
                    for keys, scored in zip(ranked.tolist(), vals.tolist(), strict=True)]
        rows = self._fetch(ranked.reshape(-1), with_vectors=True, where=where)
        out: list[list[Hit]] = []
        for query, chosen in zip(queries, ranked.tolist(), strict=True):
            rescored = self._rescore(row, query,
                                     [(key, 0.0) for key in chosen if key in rows], rows)
            out.append([_hit(rows[key], val) for key, val in rescored[:k]])
        return out

    def _checked_hits(self, row: CollectionRow, queries: np.ndarray, keys: np.ndarray,
                      vals: np.ndarray, where: tuple[str, list[Any]], k: int,
                      matches: int) -> list[list[Hit]]:
        """Hits from the ranked keys of matching points (a row per query), their rows
        read under the filter again: the keys a filter matched are kept per change
        sequence (``filter_matches``), and a search may hold a catalog row that a write
        committed since has overtaken. A point that no longer matches is left out, and
        a query left with fewer than ``k`` hits (of ``matches``) is answered by the scan
        of SQLite."""
        out = self._ranked_hits(row, queries, k, where, keys, vals, rescore=False)
        return self._short_answered(row, queries, out, where, k, matches)

    def _short_answered(self, row: CollectionRow, queries: np.ndarray,
                        out: list[list[Hit]], where: tuple[str, list[Any]], k: int,
                        matches: int) -> list[list[Hit]]:
        """``out``, with the queries that got fewer than ``min(k, matches)`` hits answered
        by the scan of SQLite (points deleted since their keys were read)."""
        short = [qi for qi, hits in enumerate(out) if len(hits) < min(k, matches)]
        if short:
            for qi, hits in zip(short, self._exact_scan(row, queries[short], k, where),
                                strict=True):
                out[qi] = hits
        return out

    def _matching_rowkeys(self, row: CollectionRow, where: tuple[str, list[Any]],
                          limit: int = -1) -> np.ndarray:
        """Row keys of the collection's points that match a compiled filter (at most
        ``limit`` of them, when it is not negative, and then the scan stops there); the
        keys kept for the filter at ``row``'s change sequence when there are
        (``filter_matches``)."""
        held = self.filter_matches.get(row.cid, row.seq, where)
        if held is not None:
            return held if limit < 0 else held[:limit]
        return self._read_rowkeys(row, where, limit)

    def _read_rowkeys(self, row: CollectionRow, where: tuple[str, list[Any]],
                      limit: int = -1) -> np.ndarray:
        """``_matching_rowkeys`` read from SQLite (all of them are then kept)."""
        keys = np.fromiter((r for (r,) in self.conn.execute(
            f"SELECT rowkey FROM points WHERE cid = ? AND {where[0]} LIMIT ?",
            (row.cid, *where[1], limit))), dtype=np.int64)
        if limit < 0:
            self.filter_matches.put(row.cid, row.seq, where, keys)
        return keys

    def _exact_scan(self, row: CollectionRow, queries: np.ndarray, k: int,
                    where: Where) -> list[list[Hit]]:
        clause, params = (f"AND {where[0]}", where[1]) if where else ("", [])
        best_keys = np.zeros((len(queries), 0), dtype=np.int64)
        best_vals = np.zeros((len(queries), 0), dtype=np.float32)
        # One statement read in pages: the rows are sorted once (paging with ``rowkey >
        # last ORDER BY rowkey LIMIT`` made SQLite sort the rest of them for every page).
        cursor = self.conn.execute(
            f"SELECT rowkey, vector FROM {POINTS_WITH_VECTORS} WHERE cid = ? {clause} "
            "ORDER BY rowkey",
            (row.cid, *params))
        while rows := cursor.fetchmany(SCAN_PAGE):
            keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = quantization.decode([r[1] for r in rows], row.dim, row.dtype)
            all_keys = np.concatenate([best_keys, np.broadcast_to(keys, (len(queries), len(keys)))],
                                      axis=1)
            all_vals = np.concatenate([best_vals, scores(queries, matrix, row.metric)], axis=1)
            idx, best_vals = top_k(all_vals, k)
            best_keys = np.take_along_axis(all_keys, idx, axis=1)
        return self._hits(row, best_keys, best_vals)

    # --- HNSW --------------------------------------------------------------------------

    def _hnsw(self, row: CollectionRow, queries: np.ndarray, k: int, ef: int | None,
              oversample: int, n: int) -> list[list[Hit]]:
        index = self.indexes.loaded(row)
        rescore = row.dtype == "int8"
        wanted = k * oversample if rescore else k
        out = self._hnsw_hits(row, index, queries, k, ef, wanted, rescore,
                              k if rescore else None)
        short = [qi for qi, hits in enumerate(out) if len(hits) < min(k, n)]
        if short:  # rows deleted after the graph was searched (a delete commits before
            # it reaches the index): search deeper once (every candidate asked for,
            # whatever the depth) before scanning everything
            deeper = self._hnsw_hits(row, index, queries[short], k, ef, wanted * 4, rescore,
                                     None)
            for qi, hits in zip(short, deeper, strict=True):
                out[qi] = hits
            short = [qi for qi, hits in enumerate(out) if len(hits) < min(k, n)]
        if short:  # the graph could not reach k points: answer those queries exactly
            for qi, hits in zip(short, self._exact_scan(row, queries[short], k, None),
                                strict=True):
                out[qi] = hits
        return out

    def _hnsw_one(self, row: CollectionRow, index: AnnIndex, query: np.ndarray,
                  scale: float, k: int, ef: int | None, n: int) -> list[Hit]:
        """``_hnsw`` for one query of a graph that needs no rescoring: the most common
        search, kept to as little interpreter work as it can be (every line here costs
        against a graph search of ~50 µs). The graph's scores are multiplied by
        ``scale`` (``search_one``). Hits come from the hit cache when it holds every
        point found, made in the graph search's own call where the compiled search
        runs (``HnswIndex.search_hits``); anything else (a point not cached, padding,
        fewer than ``k`` rows) goes the general way."""
        cached = self.hit_cache.rows(row.cid, row.seq)
        if cached is None:
            keys, vals = index.search_one(query, k, ef)
        else:  # (hits made in the graph search's call when it holds them all)
            found = index.search_hits(query, k, ef, cached, scale)
            if type(found) is list:  # (k of them, k at most the graph's live nodes)
                self.hit_cache.count(len(found), 0)
                return found
            keys, vals = found
        return self._one_hits(row, query, scale, k, ef, n, cached, keys, vals)

    def _one_hits(self, row: CollectionRow, query: np.ndarray, scale: float, k: int,
                  ef: int | None, n: int, cached: dict[int, Any] | None, keys: list[int],
                  vals: list[float]) -> list[Hit]:
        """The hits of one query's ranked points ``keys`` and scores ``vals`` (to be
        multiplied by ``scale``): from ``cached`` (``hit_cache.rows``) when it holds
        them all, else read; a search again when rows are gone."""
        if cached is not None and len(keys) >= min(k, n):
            hits = cached_hits(cached, keys, vals, scale)
            if hits is not None:
                self.hit_cache.count(len(hits), 0)
                return hits
        hits = self._assemble(row, [keys], [[val * scale for val in vals]], k)[0]
        if len(hits) < min(k, n):  # rows deleted since: search deeper, or exactly
            return self._hnsw(row, self._prepared(row, query), k, ef,
                              _param(row, "oversample"), n)[0]
        return hits

    def direct_plan(self, row: CollectionRow, live: LiveIndex, k: int, ef: int | None
                    ) -> DirectPlan | None:
        """What ``search_one`` of one plain query of ``row`` (``k``, ``ef``) reaches with
        no other step when ``live`` is caught up with ``row``: the compiled graph
        search and its depth (``HnswIndex.direct_hits``), and the collection's points;
        None where it takes another way. It holds until an exclusive holder of the
        index lock changes the indexes (``EmbeddedStore._search_read`` keeps it that
        long)."""
        if live.seq < row.seq or row.dtype == "int8":
            return None
        n = len(live.index)
        if n == 0 or n <= _param(row, "exact_threshold"):
            return None
        direct = live.index.direct_hits(k, ef)
        return None if direct is None else DirectPlan(*direct, n)

    def search_direct(self, row: CollectionRow, plan: DirectPlan, query: np.ndarray,
                      scale: float, k: int, ef: int | None) -> list[Hit] | None:
        """``search_one`` by ``plan`` (``direct_plan``, made for ``row``, ``k`` and
        ``ef``, still standing): the hits made in the graph search's own call, as
        ``_hnsw_one`` makes them through the index's layers. None, having searched
        nothing, when the hit cache holds no rows of ``row`` (``search_one`` then)."""
        cached = self.hit_cache.rows(row.cid, row.seq)
        if cached is None:
            return None
        view, depth, ranked, n = plan
        try:
            found = view.hits(query, k, depth, cached, scale)
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW search failed: {exc}") from exc
        if type(found) is list:
            self.hit_cache.count(len(found), 0)
            return found
        keys, vals = ranked(found[0], found[1], k, graph_scores=True)
        return self._one_hits(row, query, scale, k, ef, n, cached, keys, vals)

    def _hnsw_hits(self, row: CollectionRow, index: AnnIndex, queries: np.ndarray, k: int,
                   ef: int | None, wanted: int, rescore: bool, least: int | None
                   ) -> list[list[Hit]]:
        """Up to ``k`` hits per query from ``wanted`` graph candidates whose rows exist
        (``least``: where a depth is asked, only as many as it passes, at least that
        many: ``hnsw_index.candidates``)."""
        keys, vals = index.search(queries, wanted, ef=ef,
                                  threads=0 if len(queries) > 1 else 1, least=least)
        if rescore:
            return self._rescored_hits(row, queries, keys, vals, k)
        return self._assemble(row, keys.tolist(), vals.tolist(), k)

    def _rescored_hits(self, row: CollectionRow, queries: np.ndarray, keys: np.ndarray,
                       vals: np.ndarray, k: int) -> list[list[Hit]]:
        """Up to ``k`` hits per query of an int8 graph's candidates ``keys`` (-1: padding),
        ranked again by their stored float vectors, read in one result row
        (``vector_reads``); ids and payloads of the ranked points come as any search's do
        (``_assemble``: the hit cache, else SQLite) for the best ``k`` of each list alone
        unless some of them are gone."""
        ranked_keys = keys.tolist()
        stored = stored_vectors(self.conn, [key for ranked in ranked_keys for key in ranked
                                            if key >= 0], row.dim, row.dtype)
        if stored is None:  # (a vector of the wrong size: read row by row, skip it)
            size = vector_bytes(row)
            fetched = self._fetch(keys.ravel(), with_vectors=True)
            rows = {key: found for key, found in fetched.items()
                    if isinstance(found[3], bytes) and len(found[3]) == size}
            if len(rows) < len(fetched) and row.cid not in self._corrupt_vectors:
                self._corrupt_vectors.add(row.cid)  # (once per collection and handle)
                log.warning("collection %r: stored vectors not %d bytes long (points %s); "
                            "they are left out of its int8 searches", row.name, size,
                            sorted(set(fetched) - set(rows))[:10])
            out: list[list[Hit]] = []
            for query, ranked, scored in zip(queries, ranked_keys, vals.tolist(), strict=True):
                found = self._rescore(row, query, [(key, val) for key, val in zip(
                    ranked, scored, strict=True) if key in rows], rows)
                out.append([_hit(rows[key], val) for key, val in found[:k]])
            return out
        where, matrix = stored
        reranked, rescored = [], []
        for query, ranked in zip(queries, ranked_keys, strict=True):
            present = [key for key in ranked if key in where]
            sims = scores(query[None, :], matrix[[where[key] for key in present]],
                          row.metric)[0]
            order = np.argsort(-sims, kind="stable")
            reranked.append([present[i] for i in order.tolist()])
            rescored.append(sims[order].tolist())
        # hits for the best k of each list; past them only where points went meanwhile
        out = self._assemble(row, [ranked[:k] for ranked in reranked],
                             [scored[:k] for scored in rescored], k)
        for i, hits in enumerate(out):
            if len(hits) < k < len(reranked[i]):
                out[i] = self._assemble(row, [reranked[i]], [rescored[i]], k)[0]
        return out

    def _assemble(self, row: CollectionRow, ranked_keys: list[list[int]],
                  ranked_scores: list[list[float]], k: int) -> list[list[Hit]]:
        """Up to ``k`` hits per query from ranked keys (-1: padding) and their scores,
        skipping rows that no longer exist. Every line here runs once per query (or per
        hit) on a path whose graph search is ~100 µs."""
        id_rows = self._id_rows(row, ranked_keys)
        out = []
        for ranked, scored in zip(ranked_keys, ranked_scores, strict=True):
            hits = []
            for key, val in zip(ranked, scored, strict=True):
                found = id_rows.get(key)  # (-1 pads match no row)
                if found is not None:
                    hits.append(_hit(found, val))
            out.append(hits if len(hits) <= k else hits[:k])  # (a deeper search: more)
        return out

    def _filtered_hnsw(self, row: CollectionRow, query: np.ndarray, k: int, where: Where,
                       ef: int | None, n: int, matches: int) -> list[Hit]:
        assert where is not None
        index: AnnIndex = self.indexes.loaded(row)
        rescore = row.dtype == "int8"
        wanted = min(index.nodes, math.ceil(k * n / matches * 2) + k)
        while True:
            nodes, vals = index.search_nodes(query[None, :], wanted, ef=max(ef or 0, wanted),
                                             threads=1)
            found, rows = self._matching_points(index, nodes[0], vals[0], k, where, rescore)
            if len(found) >= k or wanted >= index.nodes:
                break
            wanted *= 4
            if wanted > index.nodes // 2:
                return self._exact_scan(row, query[None, :], k, where)[0]
        if len(found) < min(k, matches):  # the graph could not reach k matching points
            return self._exact_scan(row, query[None, :], k, where)[0]
        if rescore:
            found = self._rescore(row, query, found, rows)
        return [_hit(rows[key], val) for key, val in found[:k]]

    def _matching_points(self, index: AnnIndex, nodes: np.ndarray, vals: np.ndarray, k: int,
                         where: Where, with_vectors: bool
                         ) -> tuple[list[tuple[int, float]], dict[int, Sequence[Any]]]:
        """The points of ranked ``nodes`` that match ``where``, best first, with their rows.

        Up to ``k`` matches are taken from each large shared node (its points tie), checked
        in pages, so a node of many copies costs O(k) unless few of its points match.
        """
        if not (nodes >= GROUP_BASE).any():  # no shared node among the candidates
            rows = self._fetch(nodes[nodes >= 0], with_vectors, where)
            return [(key, val) for key, val in zip(nodes.tolist(), vals.tolist(), strict=True)
                    if key in rows], rows
        ranked = [(node, val, index.members(node))
                  for node, val in zip(nodes.tolist(), vals.tolist(), strict=True) if node >= 0]
        small = [key for _, _, members in ranked if len(members) <= MEMBER_PAGE
                 for key in members]
        rows = self._fetch(np.asarray(small, dtype=np.int64), with_vectors, where)
        found: list[tuple[int, float]] = []
        for _, val, members in ranked:
            if len(members) > MEMBER_PAGE:
                rows.update(self._first_matches(members, k, with_vectors, where))
            found += [(key, val) for key in islice((m for m in members if m in rows), k)]
        return found, rows

    def _first_matches(self, members: Collection[int], k: int, with_vectors: bool,
                       where: Where) -> dict[int, Sequence[Any]]:
        """Rows of at least ``min(k, matching)`` of ``members`` that match ``where``, read in
        pages that grow 4x (a node whose points rarely match costs a few queries)."""
        got: dict[int, Sequence[Any]] = {}
        points, size = iter(members), max(MEMBER_PAGE, k)
        while len(got) < k and (page := list(islice(points, size))):
            got.update(self._fetch(np.asarray(page, dtype=np.int64), with_vectors, where))
            size = min(size * 4, SCAN_PAGE)
        return got

    def _rescore(self, row: CollectionRow, query: np.ndarray, found: list[tuple[int, float]],
                 rows: dict[int, Sequence[Any]]) -> list[tuple[int, float]]:
        if not found:
            return []
        keys = [key for key, _ in found]
        matrix = quantization.decode([rows[key][3] for key in keys], row.dim, row.dtype)
        sims = scores(query[None, :], matrix, row.metric)[0]
        order = np.argsort(-sims, kind="stable")
        return [(keys[i], float(sims[i])) for i in order]

    def _fetch(self, keys: np.ndarray, with_vectors: bool,
               where: Where = None) -> dict[int, Sequence[Any]]:
        """``rowkey -> (rowkey, id, payload text[, vector blob])`` of the rows of ``keys``
        that exist (and match ``where``).

        Without vectors the rows come back as one JSON array in one result row: the
        sqlite3 module releases the interpreter lock around every step of a statement,
        and with other threads searching, each of those hand-overs costs more than the
        step (two threads fetching 10 rows row by row reached 0.45x one thread's rate).
        """
        if len(keys) == 0:
            return {}
        clause, params = (f"AND {where[0]}", where[1]) if where else ("", [])
        found = dict.fromkeys(keys.tolist())
        found.pop(-1, None)  # (the padding of a short search result)
        unique = list(found)
        if not unique:
            return {}
        keys_sql, args = keys_in(unique)
        if with_vectors:
            sql = (f"SELECT rowkey, id, payload, vector FROM {POINTS_WITH_VECTORS} "
                   f"WHERE rowkey IN ({keys_sql})"
                   f" {clause}")
            return {r[0]: r for r in self.conn.execute(sql, (*args, *params))}
        sql = (f"SELECT json_group_array(json_array(rowkey, id, payload)) FROM points "
               f"WHERE rowkey IN ({keys_sql}) {clause}")
        (text,) = self.conn.execute(sql, (*args, *params)).fetchone()
        return {r[0]: r for r in orjson.loads(text)}

    def _id_rows(self, row: CollectionRow, ranked_keys: list[list[int]]
                 ) -> dict[int, Sequence[Any]]:
        """``_fetch`` without vectors of the keys of every list in ``ranked_keys`` (-1:
        padding), served from the hit cache where it can (``hit_cache``); the dictionary
        returned must only be read."""
        cache = self.hit_cache
        cached = cache.rows(row.cid, row.seq)
        if cached is None:  # (lists of any lengths: an int8 search's drop gone points)
            rows = self._fetch(np.fromiter((key for ranked in ranked_keys for key in ranked),
                                           dtype=np.int64), with_vectors=False)
            cache.count(0, len(rows))
            cache.fill(row.cid, row.seq, rows.values())
            return rows
        missing = [key for ranked in ranked_keys for key in ranked
                   if key not in cached and key >= 0]
        if not missing:
            cache.count(sum(len(ranked) - ranked.count(-1) for ranked in ranked_keys), 0)
            return cached
        wanted = [key for ranked in ranked_keys for key in ranked]
        cache.count(len(wanted) - len(missing) - wanted.count(-1), len(missing))
        rows = self._fetch(np.asarray(missing, dtype=np.int64), with_vectors=False)
        cache.fill(row.cid, row.seq, rows.values())
        return {**{key: cached[key] for key in wanted if key in cached}, **rows}

    def _hits(self, row: CollectionRow, keys: np.ndarray, vals: np.ndarray
              ) -> list[list[Hit]]:
        rows = self._id_rows(row, keys.tolist())
        return [[_hit(rows[int(key)], float(val)) for key, val in zip(kr, vr, strict=True)
                 if int(key) in rows] for kr, vr in zip(keys, vals, strict=True)]


def _param(row: CollectionRow, name: str) -> int:
    """The collection's search setting ``name``, or the index's default for it."""
    return int(row.index_params.get(name, DEFAULT_PARAMS[name]))


def _count_key(row: CollectionRow, where: tuple[str, list[Any]]) -> tuple[int, int, str, str]:
    """A filter's match count at ``row``'s change sequence, as ``Searcher`` keeps it:
    the sequence, then the filter's ``filter_key``."""
    return (row.seq, *filter_key(row.cid, where))


def _hit(row: Sequence[Any], score: float) -> Hit:
    """A hit from a ``(rowkey, id, payload text)`` row; the payload is decoded when read."""
    return Hit.from_text(row[1], score, row[2])
