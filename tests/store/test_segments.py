"""An index of bounded segments (``index_params.segment_size``): points fill segments one
after another, replaced points move to the growing one, searches (plain, filtered, one
query, by node) merge every segment's best, shared nodes name their segment, and a
checkpoint of segments loads back as it was, in the store as in the index alone."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from embedops.store import checkpoint_files, graph_search, index_manager, mapped_files, open_store
from embedops.store import search as search_module
from embedops.store.catalog import DEFAULT_SEGMENT_SIZE, InvalidIndexParams
from embedops.store.compaction import COMPACT_MIN
from embedops.store.exact import scores, top_k
from embedops.store.hnsw_index import GROUP_BASE, HnswIndex, candidates
from embedops.store.segmented_index import (
    SEGMENT_GROUPS,
    SegmentedIndex,
    _best,
    load_index,
    new_index,
)

from .storedata import mixture

DIM, K, SIZE = 16, 10, 300


def _index(dtype: str = "float32", **params: int) -> SegmentedIndex:
    index = new_index(DIM, "cosine", dtype, {"segment_size": SIZE, **params},
                      1.0 if dtype == "int8" else None)
    assert isinstance(index, SegmentedIndex)
    return index


def _filled(n: int = 1000, dtype: str = "float32", defer: bool = False
            ) -> tuple[SegmentedIndex, np.ndarray]:
    index, data = _index(dtype), mixture(n, DIM, seed=3)
    for start in range(0, n, 128):
        stop = min(start + 128, n)
        index.add(np.arange(start, stop, dtype=np.int64), data[start:stop], defer=defer)
    return index, data


def _truth(data: np.ndarray, queries: np.ndarray, k: int = K,
           allowed: np.ndarray | None = None) -> list[set[int]]:
    sims = scores(queries, data, "cosine")
    if allowed is not None:
        sims[:, ~allowed] = -np.inf
    best, _ = top_k(sims, k)
    return [set(row.tolist()) for row in best]


def _recall(found: np.ndarray, truth: list[set[int]]) -> float:
    return float(np.mean([len(set(row.tolist()) & t) / len(t)
                          for row, t in zip(found, truth, strict=True)]))


def test_points_fill_bounded_segments_one_after_another() -> None:
    index, _ = _filled(1000)
    assert [len(segment) for segment in index.segments] == [300, 300, 300, 100]
    assert len(index) == 1000 and index.nodes == 1000 and index.pending == 0
    assert sorted(index.keys().tolist()) == list(range(1000))
    assert len(index.graphs) == 4
    assert [s.group_base for s in index.segments] == [GROUP_BASE + j * SEGMENT_GROUPS
                                                     for j in range(4)]


def test_search_merges_every_segments_best() -> None:
    index, data = _filled(1000)
    queries = mixture(50, DIM, seed=4)
    keys, values = index.search(queries, K)
    assert keys.shape == (50, K)
    assert _recall(keys, _truth(data, queries)) >= 0.97
    assert np.all(np.diff(values, axis=1) <= 1e-6)  # ranked best first across segments
    # points of every segment come back: each finds itself first
    for i in (5, 350, 650, 950):
        assert index.search(data[i:i + 1], 1)[0][0, 0] == i
        one_keys, one_values = index.search_one(np.ascontiguousarray(data[i:i + 1]), K)
        assert one_keys == keys_of(index, data[i:i + 1]) and one_keys[0] == i
        assert one_values == sorted(one_values, reverse=True)



def _each_segments_way(index: SegmentedIndex, query: np.ndarray, k: int,
                       ef: int | None, least: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """One query searched in each segment its own way and the best ``k`` taken, as a
    batch of queries is."""
    return _best(query, k, [segment.search(query, k, depth, 1, least)
                            for segment, depth in index._depths(ef)])


@pytest.mark.skipif(not graph_search.compiled(), reason="the compiled search is not built")
@pytest.mark.parametrize(("dtype", "metric"), [("float32", "cosine"), ("int8", "cosine"),
                                               ("float32", "l2"), ("int8", "ip")])
def test_one_query_over_many_segments_takes_one_pass_with_the_same_answer(
        monkeypatch: pytest.MonkeyPatch, dtype: str, metric: str) -> None:
    """A single query over several segments writes every segment's candidates into one
    pair of arrays (``_search_row``) and answers as each segment's own search and the
    best of them would: the same keys, the same scores, best first, with removed
    nodes in the graphs too."""
    index = new_index(DIM, metric, dtype, {"segment_size": SIZE},
                      1.0 if dtype == "int8" else None)
    assert isinstance(index, SegmentedIndex)
    data = mixture(1000, DIM, seed=3)
    index.add(np.arange(1000, dtype=np.int64), data)
    index.remove(np.arange(0, 1000, 7, dtype=np.int64))  # (tombstones widen the depth)
    queries = mixture(20, DIM, seed=8)
    expected = []
    for query in queries:
        row = np.ascontiguousarray(query[None, :])
        for ef, least, k in ((None, None, K), (64, K, 4 * K), (16, K, 4 * K), (200, None, 3)):
            expected.append((row, ef, least, k, _each_segments_way(index, row, k, ef, least)))

    def refused(*args: object, **kwargs: object) -> object:
        raise AssertionError("a segment searched its own way")

    monkeypatch.setattr(HnswIndex, "search", refused)
    for row, ef, least, k, (want_keys, want_scores) in expected:
        keys, scores = index.search(row, k, ef, least=least)
        assert keys.tolist() == want_keys.tolist()
        np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


def test_one_query_takes_each_segments_own_way_where_one_needs_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending points or more asked than a segment's live nodes send the query each
    segment's own way before any segment is searched in one pass; a shared node
    (identical vectors) found in the pass sends it there after. The answers are a
    batch's."""
    index, data = _filled(1000)
    row = np.ascontiguousarray(data[950:951])
    passes = [0]
    real = HnswIndex.search_row_into

    def counted(self: HnswIndex, *args: object) -> None:
        passes[0] += 1
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HnswIndex, "search_row_into", counted)
    index.search(row, K)
    assert passes[0] == 4  # (four segments, all taken by the pass)
    index.add(np.asarray([5000, 5001], dtype=np.int64), data[[950, 950]], defer=True)
    assert index.segments[-1].pending == 2
    passes[0] = 0
    keys, _ = index.search(row, K)
    assert passes[0] == 0 and {950, 5000, 5001} <= set(keys[0].tolist())
    assert keys.tolist() == _each_segments_way(index, row, K, None)[0].tolist()
    index.merge_all()  # (5000 and 5001 share 950's node now: 102 points, 100 nodes)
    keys, _ = index.search(row, K)
    assert {950, 5000, 5001} <= set(keys[0].tolist())
    assert keys.tolist() == _each_segments_way(index, row, K, None)[0].tolist()
    plain, _ = _filled(1000)
    passes[0] = 0
    wide, _ = plain.search(row, 150)  # (more than the last segment's 100 live nodes)
    assert passes[0] == 0
    assert wide.tolist() == _each_segments_way(plain, row, 150, None)[0].tolist()


def keys_of(index: SegmentedIndex, query: np.ndarray) -> list[int]:
    return index.search(query, K)[0][0].tolist()


def test_a_replaced_point_leaves_its_sealed_segment_for_the_growing_one() -> None:
    index, data = _filled(1000)
    moved = data[999]  # key 5 (first segment) takes the vector of point 999
    index.add(np.asarray([5]), moved[None, :])
    assert len(index) == 1000
    assert [len(segment) for segment in index.segments] == [299, 300, 300, 101]
    assert index.segments[0].removed == 1
    keys, values = index.search(moved[None, :], 2)
    assert set(keys[0].tolist()) == {5, 999}
    assert values[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert not index.segments[0].holds(np.asarray([5]))[0]
    assert index.segments[-1].holds(np.asarray([5]))[0]
    assert index.remove(np.asarray([5, 6, 700, 10_000])) == 3
    assert len(index) == 997
    found = index.search(data[[6, 700]], K)[0]
    assert not np.isin([5, 6, 700], found).any()


def test_a_full_growing_segment_splits_a_batch() -> None:
    index, data = _index(), mixture(700, DIM, seed=5)
    index.add(np.arange(700, dtype=np.int64), data)
    assert [len(segment) for segment in index.segments] == [300, 300, 100]


@pytest.mark.parametrize("defer", [False, True])
def test_a_key_given_twice_in_a_batch_across_a_boundary_keeps_its_last_vector(
        defer: bool) -> None:
    index, data = _index(), mixture(310, DIM, seed=28)
    index.add(np.arange(298, dtype=np.int64), data[:298], defer=defer)
    index.add(np.asarray([1000, 1001, 1000, 1002], dtype=np.int64), data[300:304],
              defer=defer)
    assert [len(segment) for segment in index.segments] == [300, 1]
    assert len(index) == 301 == len(set(index.keys().tolist()))
    assert index.matches_vectors(np.asarray([1000]), data[[302]]).all()
    assert index.search(data[[302]], 1)[0][0, 0] == 1000


@pytest.mark.parametrize("defer", [False, True])
def test_a_batch_that_fills_the_growing_segment_moves_its_replacements_whole(
        defer: bool) -> None:
    """A batch of new points that fills the growing segment, with replacements of
    points it held at its end: those land in the new segment and leave the old one
    (which the batch's first new points fill)."""
    index, data = _index(), mixture(400, DIM, seed=21)
    index.add(np.arange(295, dtype=np.int64), data[:295], defer=defer)
    keys = np.asarray([*range(1000, 1010), 3, 7], dtype=np.int64)
    index.add(keys, data[300:312], defer=defer)
    assert [len(segment) for segment in index.segments] == [300, 5]
    assert len(index) == 305 == len(set(index.keys().tolist())) == len(index.keys())
    assert not index.segments[0].holds(np.asarray([3, 7])).any()
    assert index.segments[1].holds(np.asarray([3, 7])).all()
    found, _ = index.search(data[[310]], 3)
    assert found[0, 0] == 3 and list(found[0]).count(3) == 1
    assert index.matches_vectors(np.asarray([3, 7]), data[[310, 311]]).all()
    assert not index.matches_vectors(np.asarray([3, 7]), data[[3, 7]]).any()


def test_deferred_points_are_searchable_and_merge_oldest_segment_first() -> None:
    index, data = _filled(700, defer=True)
    assert index.pending == 700 and index.nodes == 700
    queries = mixture(20, DIM, seed=6)
    assert _recall(index.search(queries, K)[0], _truth(data, queries)) == 1.0
    assert index.merge(400) == 300  # (one segment a call)
    assert [segment.pending for segment in index.segments] == [0, 300, 100]
    assert index.merge(200) == 200
    assert [segment.pending for segment in index.segments] == [0, 100, 100]
    index.merge_all()
    assert index.pending == 0
    assert _recall(index.search(queries, K)[0], _truth(data, queries)) >= 0.97


def test_shared_nodes_take_their_segments_key_range() -> None:
    index, data = _index(), mixture(700, DIM, seed=7)
    data[[10, 20]] = data[0]  # three copies in the first segment
    data[[610, 620]] = data[600]  # three in the third
    index.add(np.arange(700, dtype=np.int64), data)
    nodes, _ = index.search_nodes(data[[0, 600]], 1)
    first, third = nodes[:, 0].tolist()
    assert GROUP_BASE <= first < GROUP_BASE + SEGMENT_GROUPS
    assert GROUP_BASE + 2 * SEGMENT_GROUPS <= third < GROUP_BASE + 3 * SEGMENT_GROUPS
    assert list(index.members(first)) == [0, 10, 20]
    assert list(index.members(third)) == [600, 610, 620]
    assert list(index.members(42)) == [42]
    keys, _ = index.search(data[[600]], 3)
    assert set(keys[0].tolist()) == {600, 610, 620}


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_filtered_searches_run_in_the_segments_holding_the_matches(dtype: str) -> None:
    index, data = _filled(1000, dtype=dtype)
    queries = mixture(30, DIM, seed=8)
    allowed = np.zeros(1000, dtype=bool)
    allowed[::7] = True  # matches in every segment
    keys = np.flatnonzero(allowed).astype(np.int64)
    truth = _truth(data, queries, allowed=allowed)
    among = index.search_among(queries, K, keys)
    assert among is not None and np.isin(among[0], keys).all()
    assert _recall(among[0], truth) >= (1.0 if dtype == "float32" else 0.8)
    assert not index.restricted(keys)
    assert index.restrict(keys) and index.restricted(keys)
    within = index.search_within(queries, K, keys)
    assert within is not None and np.isin(within[0][within[0] >= 0], keys).all()
    assert _recall(within[0], truth) >= 0.8
    index.add(np.asarray([1]), data[1:2])  # a write: the split is made again
    assert not index.restricted(keys)
    assert index.search_among(queries, K, np.asarray([3, 5000], dtype=np.int64)) is None


def test_a_search_depth_is_shared_among_the_segments_by_their_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A search's depth (asked, or the default for one graph of all the points) is the
    whole search's: each segment searches at its share by live nodes, so together they
    pass about as many nodes as one graph would; one segment searches as one graph."""
    index, data = _filled(1000)  # segments of 300, 300, 300 and 100 points
    seen: list[int | None] = []
    for method in ("search_one", "search", "search_row_into"):
        real = getattr(HnswIndex, method)

        def recorded(self: HnswIndex, queries: np.ndarray, k: int, ef: int | None = None,
                     *rest: object, real: object = real) -> object:
            seen.append(ef)
            return real(self, queries, k, ef, *rest)  # type: ignore[operator]

        monkeypatch.setattr(HnswIndex, method, recorded)
    assert index.search_depth == 64  # (the default for 1,000 nodes)
    index.search_one(data[0], K)
    index.search(data[:3], K)
    assert seen == [20, 20, 20, 7] * 2  # (64 x 300 / 1000, rounded up; 64 x 100 / 1000)
    seen.clear()
    keys, _ = index.search_one(data[5], K, ef=200)
    assert seen == [60, 60, 60, 20] and keys[0] == 5
    seen.clear()
    single, _ = _filled(200)
    single.search_one(data[0], K)
    single.search_one(data[0], K, ef=33)
    assert seen == [None, 33]  # (one segment: its own default depth, or ef, as one graph)
    empty = _index("float32")
    assert len(empty) == 0 and empty.search_one(data[0], K) == ([], [])


def test_rescoring_candidates_follow_the_depth_asked() -> None:
    """A caller that keeps ``least`` of ``k`` candidates (int8 rescoring) and asks a
    depth gets as many as the depth passes, between ``least`` and ``k``; with no depth
    asked, all ``k``."""
    assert candidates(40, None, 10) == 40
    assert candidates(40, 64, None) == 40
    assert candidates(40, 12, 10) == 12
    assert candidates(40, 3, 10) == 10
    assert candidates(40, 500, 10) == 40


@pytest.mark.parametrize("set_depth", [False, True])
def test_each_int8_segment_returns_its_share_of_the_rescoring_candidates(
        monkeypatch: pytest.MonkeyPatch, set_depth: bool) -> None:
    """An int8 collection's search asks ``oversample × k`` candidates to rescore. With a
    depth asked (the search's, or the collection's ``expansion_search``), each segment
    returns as many as its share of the depth passes, at least ``k``, so that a
    shallower depth searches shallower; with none asked, each returns all of them, as
    the default depth's recall was measured with."""
    index = _index("int8", **({"expansion_search": 64} if set_depth else {}))
    data = mixture(1000, DIM, seed=3)
    index.add(np.arange(1000, dtype=np.int64), data)  # segments of 300, 300, 300, 100
    asked: list[tuple[int, int | None]] = []
    real = HnswIndex.search_nodes

    def recorded(self: HnswIndex, queries: np.ndarray, k: int, ef: int | None = None,
                 threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        asked.append((k, ef))
        return real(self, queries, k, ef, threads)

    monkeypatch.setattr(HnswIndex, "search_nodes", recorded)
    queries = mixture(30, DIM, seed=4)
    keys, _ = index.search(queries, 4 * K, ef=None if set_depth else 64, least=K)
    # depth 64 shared by live nodes: 20, 20, 20, 7 deep; each returns as many, >= K
    assert asked == [(20, 20), (20, 20), (20, 20), (K, 7)]
    assert keys.shape == (30, 4 * K) and (keys >= 0).all()
    assert _recall(keys[:, :K], _truth(data, queries)) >= 0.8
    asked.clear()
    index.search(queries, 4 * K, ef=2000, least=K)  # (a deep search: all 40 each)
    assert [k for k, _ in asked] == [4 * K] * 4
    asked.clear()
    index.search(queries, 4 * K, ef=64)  # (no caller's count: all of them)
    assert [k for k, _ in asked] == [4 * K] * 4
    if not set_depth:
        # no depth asked: one graph's default shared, each segment returning all k,
        # so at least as deep; the depth reported counts that (4 x 10 candidates for
        # each of the 4 segments, above 64 for 1,000 nodes)
        asked.clear()
        index.search(queries, 4 * K, least=K)
        assert asked == [(4 * K, 20)] * 3 + [(4 * K, 7)]
        asked.clear()
        index.search(queries, 4, least=1)  # (a search for 1 hit: no deeper than before)
        assert asked == [(4, 20)] * 3 + [(4, 7)]
        assert index.search_depth == 160
        float_index, _ = _filled(1000)
        assert float_index.search_depth == 64


def test_an_int8_default_depth_counts_the_segments_with_graph_nodes() -> None:
    """A segment holding only pending points has no graph to pass: the depth reported
    counts the rescoring candidates of the segments with graph nodes alone."""
    index = _index("int8")
    data = mixture(950, DIM, seed=3)
    index.add(np.arange(900, dtype=np.int64), data[:900])  # three full segments
    index.add(np.arange(900, 950, dtype=np.int64), data[900:], defer=True)
    assert len(index.segments) == 4 and index.segments[3].pending == 50
    assert index.search_depth == 120  # (4 x 10 for each of three; 64 for 900 nodes)
    index.merge_all()
    assert index.search_depth == 160


def test_an_int8_store_search_shallower_than_its_candidates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the store: an int8 collection of segments searched at a depth below
    ``oversample × k`` per segment asks each segment for fewer candidates and still
    returns ``k`` rescored hits, best first."""
    asked: list[int] = []
    real = HnswIndex.search_nodes

    def recorded(self: HnswIndex, queries: np.ndarray, k: int, ef: int | None = None,
                 threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        asked.append(k)
        return real(self, queries, k, ef, threads)

    monkeypatch.setattr(HnswIndex, "search_nodes", recorded)
    n = 1200
    data = mixture(n, DIM, seed=21)
    ids = [f"p{i}" for i in range(n)]
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, dtype="int8", fingerprint="fp", index_params={
            "exact_threshold": 0, "segment_size": 300, "checkpoint_every": 100_000})
        store.upsert("c", ids, data, fingerprint="fp")
        assert store.wait_merged(timeout=120)
        queries = mixture(40, DIM, seed=22)
        truth = _truth(data, queries)
        for ef in (16, 64, None):
            asked.clear()
            found = store.search("c", queries, k=K, ef=ef)
            # (four segments: 16 shares to 4 each, at least k; 64 to 16; none: 40 each)
            assert asked == [{16: K, 64: 16, None: 4 * K}[ef]] * 4, (ef, asked)
            assert all(len(hits) == K for hits in found)
            assert all([h.score for h in hits] == sorted((h.score for h in hits),
                                                         reverse=True) for hits in found)
            recall = float(np.mean([len({ids.index(h.id) for h in hits} & t) / K
                                    for hits, t in zip(found, truth, strict=True)]))
            assert recall >= (0.8 if ef == 16 else 0.95), (ef, recall)


def test_an_int8_search_at_an_asked_depth_searches_deeper_before_scanning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows gone from SQLite that the index still holds (a delete commits before it
    reaches the index) leave an int8 search at a shallow asked depth short of ``k``
    hits: it asks the segments again for every candidate, deeper, and answers from
    them, without scanning the whole collection."""
    n = 1200
    data = mixture(n, DIM, seed=31)
    ids = [f"p{i}" for i in range(n)]
    scans = [0]
    real_scan = search_module.Searcher._exact_scan

    def counted(self: object, *args: object) -> object:
        scans[0] += 1
        return real_scan(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module.Searcher, "_exact_scan", counted)
    with open_store(tmp_path / "s", hit_cache_bytes=0) as store:
        store.create_collection("c", DIM, dtype="int8", fingerprint="fp", index_params={
            "exact_threshold": 0, "segment_size": 300, "checkpoint_every": 100_000})
        store.upsert("c", ids, data, fingerprint="fp")
        assert store.wait_merged(timeout=120)
        query = data[0]
        ranked = np.argsort(-scores(query[None, :], data, "cosine")[0]).tolist()
        gone, kept = ranked[:60], ranked[60:70]
        conn = sqlite3.connect(tmp_path / "s" / "store.sqlite")
        marks = ",".join("?" * len(gone))
        rowkeys = [key for (key,) in conn.execute(
            f"SELECT rowkey FROM points WHERE id IN ({marks})", [ids[i] for i in gone])]
        conn.execute(f"DELETE FROM points WHERE rowkey IN ({marks})", rowkeys)
        conn.execute(f"DELETE FROM vectors WHERE rowkey IN ({marks})", rowkeys)
        conn.commit()
        conn.close()
        hits = store.search("c", query, k=K, ef=16)[0]
        assert scans[0] == 0
        assert [h.id for h in hits] == [ids[i] for i in kept]


def test_each_segment_passes_its_share_of_a_broad_filters_reach(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A search kept within a filter's matches passes ``WITHIN_REACH`` matching nodes
    in all; over segments each passes its part (as its share of the matches), not the
    whole reach again, so a filter over five segments is not five searches as deep as
    one graph's."""
    index, _ = _filled(1200)
    keys = np.flatnonzero(np.arange(1200) % 5 == 0).astype(np.int64)
    keys = np.concatenate([keys[keys < 300], keys[keys >= 600]])  # none in segment 2
    shares: list[float] = []
    depths: list[int] = []
    real = HnswIndex._depth_within

    def recorded(self: HnswIndex, ef: int | None, k: int, within: object,
                 share: float = 1.0) -> int:
        shares.append(share)
        depths.append(real(self, ef, k, within, share))  # type: ignore[arg-type]
        return depths[-1]

    monkeypatch.setattr(HnswIndex, "_depth_within", recorded)
    queries = mixture(5, DIM, seed=9)
    found = index.search_within(queries, K, keys)
    assert found is not None and np.isin(found[0], keys).all()
    held = [(keys < 300).sum(), ((keys >= 600) & (keys < 900)).sum(), (keys >= 900).sum()]
    assert shares == pytest.approx([h / len(keys) for h in held])
    assert len(depths) == 3 and min(depths) >= K
    segment = index.segments[0]
    within = segment._matched(keys[keys < 300], restricted=True).within
    alone = real(segment, 1, K, within)  # (ef 1: the reach alone sets the depth)
    assert real(segment, 1, K, within, shares[0]) < alone


def test_vectors_held_are_read_from_their_segments() -> None:
    index, data = _filled(700)
    keys = np.asarray([650, 3, 400], dtype=np.int64)
    assert np.allclose(index.stored(keys), data[keys], atol=1e-6)
    assert index.matches_vectors(keys, data[keys]).all()
    assert not index.matches_vectors(keys, data[keys + 1]).any()


def test_a_checkpoint_of_segments_loads_back_as_it_was(tmp_path: Path) -> None:
    index, data = _filled(1000)
    data[[10, 20]] = data[0]
    index.add(np.asarray([10, 20]), data[[10, 20]])  # (moved to the growing segment)
    index.add(np.arange(1000, 1100, dtype=np.int64), mixture(100, DIM, seed=9),
              defer=True)  # pending in the last segment
    checkpoint_files.write(tmp_path, 7, index.image(42))
    manifest = json.loads((tmp_path / "7.json").read_text())
    assert manifest["format"] == checkpoint_files.SEGMENTS_FORMAT
    assert len(manifest["segments"]) == len(index.segments) == 4
    named = checkpoint_files.manifest_files(tmp_path, manifest)
    assert all(path.is_file() for path in named) and len(named) >= 4 * 3
    loaded = load_index(tmp_path, 7, DIM, "cosine", "float32", {"segment_size": SIZE}, None)
    assert loaded is not None
    again, seq = loaded
    assert seq == 42 and isinstance(again, SegmentedIndex)
    assert [len(s) for s in again.segments] == [len(s) for s in index.segments]
    assert [s.pending for s in again.segments] == [s.pending for s in index.segments]
    assert [s.group_base for s in again.segments] == [s.group_base for s in index.segments]
    queries = mixture(20, DIM, seed=10)
    assert np.array_equal(again.search(queries, K)[0], index.search(queries, K)[0])
    assert list(again.members(again.search_nodes(data[[0]], 1)[0][0, 0])) == [0]
    # a collection of one graph does not read a checkpoint of segments (rebuilt instead)
    assert load_index(tmp_path, 7, DIM, "cosine", "float32", {}, None) is None

    def checkpointed(seq: int) -> tuple[set[str], set[str]]:
        again.save(tmp_path, 7, seq)
        left = {path.name for path in tmp_path.glob("7-*")}
        return left, {path.name for path in checkpoint_files.manifest_files(
            tmp_path, json.loads((tmp_path / "7.json").read_text()))}

    # unchanged since they were loaded, the segments keep their files (but the last:
    # its pending points are merged first) ...
    left, kept = checkpointed(43)
    assert left == kept and {name[:7] for name in kept} == {"7-42.s0", "7-42.s1", "7-42.s2",
                                                           "7-43.s3"}
    # ... and a segment that changed is written again, alone
    assert again.remove(np.asarray([400])) == 1
    left, kept = checkpointed(44)
    assert left == kept and {name[:7] for name in kept} == {"7-42.s0", "7-44.s1", "7-42.s2",
                                                           "7-43.s3"}
    reloaded = load_index(tmp_path, 7, DIM, "cosine", "float32", {"segment_size": SIZE}, None)
    assert reloaded is not None and len(reloaded[0]) == len(again) == len(index) - 1
    assert np.array_equal(reloaded[0].search(queries, K)[0], again.search(queries, K)[0])
    # a point of a sealed segment replaced: both segments written, the new vector loads
    moved = mixture(1, DIM, seed=24)
    again.add(np.asarray([450]), moved)
    left, kept = checkpointed(45)
    assert left == kept and {name[:7] for name in kept} == {"7-42.s0", "7-45.s1", "7-42.s2",
                                                           "7-45.s3"}
    reloaded = load_index(tmp_path, 7, DIM, "cosine", "float32", {"segment_size": SIZE}, None)
    assert reloaded is not None
    assert np.allclose(reloaded[0].stored(np.asarray([450])), moved, atol=1e-6)
    assert not reloaded[0].segments[1].holds(np.asarray([450]))[0]
    # a kept segment's files removed under the store: the next checkpoint writes it
    (tmp_path / "7-42.s2.labels.npy").unlink()
    left, kept = checkpointed(46)
    assert left == kept and {name[:7] for name in kept} == {"7-42.s0", "7-45.s1", "7-46.s2",
                                                           "7-45.s3"}
    # saved into another folder, every segment is written there
    again.save(tmp_path / "other", 7, 47)
    copied = load_index(tmp_path / "other", 7, DIM, "cosine", "float32",
                        {"segment_size": SIZE}, None)
    assert copied is not None and len(copied[0]) == len(again)


def test_a_checkpoint_of_one_graph_loads_as_the_first_segment(tmp_path: Path) -> None:
    one = HnswIndex(DIM, "cosine", "float32", {}, None)
    data = mixture(400, DIM, seed=11)
    one.add(np.arange(400, dtype=np.int64), data)
    checkpoint_files.write(tmp_path, 3, one.image(5))
    loaded = load_index(tmp_path, 3, DIM, "cosine", "float32", {"segment_size": SIZE}, None)
    assert loaded is not None
    index = loaded[0]
    assert isinstance(index, SegmentedIndex) and [len(s) for s in index.segments] == [400]
    index.add(np.asarray([400]), mixture(1, DIM, seed=12))  # (over the bound: a new one)
    assert [len(s) for s in index.segments] == [400, 1]


def _layout(store: object, name: str) -> type:
    """The class of the index a store keeps loaded for collection ``name``."""
    live = store._indexes.live  # type: ignore[attr-defined]
    cid = store.conn.execute("SELECT cid FROM collections WHERE name = ?",  # type: ignore[attr-defined]
                             (name,)).fetchone()[0]
    return type(live[cid].index)


def test_segments_are_the_default_and_zero_or_an_older_collection_keeps_one_graph(
        tmp_path: Path) -> None:
    """A new collection keeps its index in segments of ``DEFAULT_SEGMENT_SIZE`` unless it
    sets a size (100 up) or 0 (one graph); a collection made before segments were the
    default, its parameters without ``segment_size``, keeps one graph."""
    data = mixture(2, DIM, seed=26)
    with open_store(tmp_path / "s") as store:
        for bad in (10, 99, -1):
            with pytest.raises(InvalidIndexParams, match="segment_size"):
                store.create_collection("c", DIM, fingerprint="fp",
                                        index_params={"segment_size": bad})
        for name, params in (("plain", {}), ("one", {"segment_size": 0}),
                             ("older", {}), ("small", {"segment_size": 100})):
            info = store.create_collection(name, DIM, fingerprint="fp",
                                           index_params={"exact_threshold": 0, **params})
            assert info.index_params["segment_size"] == params.get("segment_size",
                                                                   DEFAULT_SEGMENT_SIZE)
            store.upsert(name, ["a", "b"], data, None, fingerprint="fp")
        store.conn.execute(  # (as a release before the default stored it)
            "UPDATE collections SET index_params = ? WHERE name = 'older'",
            (json.dumps({"exact_threshold": 0}),))
    with open_store(tmp_path / "s") as store:
        assert store.get_collection("older").index_params == {"exact_threshold": 0}
        for name in ("plain", "one", "older", "small"):
            assert store.search_one(name, data[0], k=1)[0].id == "a"
        assert _layout(store, "plain") is SegmentedIndex
        assert _layout(store, "small") is SegmentedIndex
        assert _layout(store, "one") is HnswIndex and _layout(store, "older") is HnswIndex
        assert all(store.stats(name)["index_segments"] == 1
                   for name in ("plain", "one", "older", "small"))


def _store_recall(store: object, data: np.ndarray, queries: np.ndarray,
                  ids: list[str]) -> float:
    truth = _truth(data, queries)
    found = store.search("c", queries, k=K)  # type: ignore[attr-defined]
    return float(np.mean([len({ids.index(h.id) for h in hits} & t) / K
                          for hits, t in zip(found, truth, strict=True)]))


def test_a_store_collection_of_segments_searches_checkpoints_and_reopens(
        tmp_path: Path) -> None:
    n = 1500
    data = mixture(n, DIM, seed=13)
    ids = [f"p{i}" for i in range(n)]
    params = {"exact_threshold": 0, "segment_size": 400, "checkpoint_every": 100_000}
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params=params)
        for start in range(0, n, 250):
            store.upsert("c", ids[start:start + 250], data[start:start + 250],
                         [{"part": i % 4} for i in range(start, min(start + 250, n))],
                         fingerprint="fp")
        assert store.wait_merged(timeout=120)
        queries = mixture(40, DIM, seed=14)
        assert _store_recall(store, data, queries, ids) >= 0.97
        hits = store.search("c", data[1234], k=3, filter={"field": "part", "eq": 1234 % 4})[0]
        assert hits[0].id == "p1234" and all(h.payload["part"] == 2 for h in hits)
        store.delete("c", ["p7", "p1300"])
        assert "p7" not in {h.id for h in store.search("c", data[7], k=K)[0]}
        store.checkpoint("c")
        (manifest_file,) = (tmp_path / "s" / "index").glob("*.json")
        manifest = json.loads(manifest_file.read_text())
        assert [part["size"] for part in manifest["segments"]] == [399, 400, 400, 299]
        assert store.stats("c")["index_segments"] == 4
    with open_store(tmp_path / "s", read_only=True) as reader:
        assert reader.count("c") == n - 2
        assert _store_recall(reader, data, queries, ids) >= 0.97
        assert reader.search("c", data[1300], k=1)[0][0].id != "p1300"


def test_writes_after_a_reopen_go_on_filling_the_segments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reopened read-write, the graphs map their checkpoint files: the next merges
    copy the growing segment's graph off the lock, and a full one is sealed as before."""
    monkeypatch.setattr(mapped_files, "MAP_MIN_BYTES", 1)
    data = mixture(1400, DIM, seed=15)
    ids = [f"p{i}" for i in range(1400)]
    params = {"exact_threshold": 0, "segment_size": 500}
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params=params)
        store.upsert("c", ids[:700], data[:700], None, fingerprint="fp")
        assert store.wait_merged(timeout=120)
    (manifest_file,) = (tmp_path / "s" / "index").glob("*.json")
    first = json.loads(manifest_file.read_text())["segments"]
    with open_store(tmp_path / "s") as store:
        assert store.stats("c")["index_mapped"]
        for start in range(700, 1400, 100):
            store.upsert("c", ids[start:start + 100], data[start:start + 100], None,
                         fingerprint="fp")
        assert store.wait_merged(timeout=120)
        queries = mixture(40, DIM, seed=16)
        assert _store_recall(store, data, queries, ids) >= 0.97
        report = store.verify_index("c")
        assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
        store.checkpoint("c")
        (manifest_file,) = (tmp_path / "s" / "index").glob("*.json")
        parts = json.loads(manifest_file.read_text())["segments"]
        assert [part["size"] for part in parts] == [500, 500, 400]
        # the sealed segment no write changed keeps the files of the first checkpoint
        # (the file its graph maps), and every other file is gone
        assert parts[0]["file"] == first[0]["file"] != parts[1]["file"]
        assert parts[1]["file"] != first[1]["file"]
        named = set(checkpoint_files.manifest_files(manifest_file.parent,
                                                    json.loads(manifest_file.read_text())))
        assert set(manifest_file.parent.glob("*-*")) == named


@pytest.mark.slow
def test_replacements_in_sealed_segments_are_compacted_while_searches_run(
        tmp_path: Path) -> None:
    n = 3000
    data = mixture(n, DIM, seed=17)
    ids = [str(i) for i in range(n)]
    params = {"exact_threshold": 0, "segment_size": 1000, "expansion_search": 16}
    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp", index_params=params)
    for start in range(0, n, 500):
        store.upsert("c", ids[start:start + 500], data[start:start + 500], None,
                     fingerprint="fp")
    assert store.wait_merged(timeout=120)
    queries = mixture(100, DIM, seed=18)
    fresh = _store_recall(store, data, queries, ids)
    untouched = np.arange(n - 200, n)  # never replaced: each must always find itself
    errors: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            for i in untouched[::9].tolist():
                hits = store.search("c", data[i], k=K)[0]
                if len(hits) != K or hits[0].id != str(i):
                    errors.append(f"point {i}: {[h.id for h in hits[:3]]}")

    thread = threading.Thread(target=searcher)
    thread.start()
    replaced = np.random.default_rng(19).choice(n - 200, size=900, replace=False)
    moved = data.copy()
    moved[replaced] = mixture(len(replaced), DIM, seed=20)
    for part in np.array_split(replaced, 3):
        store.upsert("c", [ids[i] for i in part], moved[part], None, fingerprint="fp")
    assert store.wait_compacted(timeout=300) and store.wait_merged(timeout=120)
    stop.set()
    thread.join(timeout=60)
    assert errors == []
    assert store.stats("c")["deleted"] < COMPACT_MIN
    assert _store_recall(store, moved, queries, ids) >= fresh - 0.005
    report = store.verify_index("c")
    assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    store.checkpoint("c")
    (manifest_file,) = (tmp_path / "s" / "index").glob("*.json")
    parts = json.loads(manifest_file.read_text())["segments"]
    assert sum(part["size"] for part in parts) == n
    assert sum(part["removed"] for part in parts) < COMPACT_MIN
    store.close()


def test_background_checkpoints_of_segments_prune_their_tombstones(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = mixture(2000, DIM, seed=22)
    ids = [str(i) for i in range(2000)]
    params = {"exact_threshold": 0, "segment_size": 500, "checkpoint_every": 300}
    store = open_store(tmp_path / "s")
    try:
        store.create_collection("c", DIM, fingerprint="fp", index_params=params)
        for start in range(0, 2000, 250):
            store.upsert("c", ids[start:start + 250], data[start:start + 250], None,
                         fingerprint="fp")
        store.delete("c", ids=ids[:400])
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        store.upsert("c", ids[1000:1400], data[:400], None, fingerprint="fp")
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        conn = sqlite3.connect(tmp_path / "s" / "store.sqlite")
        (pruned, seq) = conn.execute("SELECT pruned_seq, seq FROM collections").fetchone()
        (left,) = conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()
        conn.close()
        manifest = checkpoint_files.read_manifest(tmp_path / "s" / "index", 1)
        assert manifest is not None and len(manifest["segments"]) >= 4
        assert pruned == manifest["seq"] > 0 and left < 400, (pruned, seq, left)
        # more points for the growing segment alone: the next background checkpoint
        # writes it, and keeps every sealed segment's files
        store.upsert("c", [f"n{i}" for i in range(400)], mixture(400, DIM, seed=25), None,
                     fingerprint="fp")
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        later = checkpoint_files.read_manifest(tmp_path / "s" / "index", 1)
        assert later is not None and later["seq"] > manifest["seq"]
        sealed = [part["file"] for part in manifest["segments"][:-1]]
        assert [part["file"] for part in later["segments"][:len(sealed)]] == sealed
        assert later["segments"][-1]["file"] != manifest["segments"][-1]["file"]
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
        assert store.search("c", data[5], k=1)[0][0].id == "1005"
    finally:
        store.close()


def test_filtered_searches_from_many_threads_beside_writes(tmp_path: Path) -> None:
    """Searches split a kept filter's matches by segment side by side (``_split``),
    while writes move the index on."""
    data = mixture(2000, DIM, seed=23)
    ids = [str(i) for i in range(2000)]
    store = open_store(tmp_path / "s")
    errors: list[BaseException] = []
    try:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 300})
        store.upsert("c", ids[:1500], data[:1500], [{"b": i % 10} for i in range(1500)],
                     fingerprint="fp")
        assert store.wait_merged(60)
        stop = threading.Event()

        def searcher(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    b = int(rng.integers(0, 10))
                    i = int(rng.integers(0, 1500)) // 10 * 10 + b
                    hits = store.search("c", data[i], k=5,
                                        filter={"field": "b", "in": [b, (b + 1) % 10]})[0]
                    if not hits or any(h.payload["b"] not in (b, (b + 1) % 10)
                                       for h in hits):
                        errors.append(AssertionError(f"query {i}: {hits[:2]}"))
            except BaseException as exc:  # (reported below)
                errors.append(exc)

        threads = [threading.Thread(target=searcher, args=(seed,)) for seed in range(3)]
        for thread in threads:
            thread.start()
        for start in range(1500, 2000, 50):
            store.upsert("c", ids[start:start + 50], data[start:start + 50],
                         [{"b": i % 10} for i in range(start, start + 50)], fingerprint="fp")
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
    finally:
        store.close()


def test_a_build_of_segments_checkpoints_by_its_growing_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default interval is a share of what a checkpoint rewrites: all of one graph,
    only the changed segments of a collection of segments (here 50% of them, or 100
    points at least)."""
    monkeypatch.setattr(index_manager, "CHECKPOINT_SHARE", 0.5)
    monkeypatch.setitem(index_manager.DEFAULT_PARAMS, "checkpoint_every", 100)
    written: list[int] = []
    write = checkpoint_files.write

    def counted(folder: Path, cid: int, image: object, cancelled: object = None) -> Path:
        written.append(cid)
        return write(folder, cid, image, cancelled)  # type: ignore[arg-type]

    monkeypatch.setattr(checkpoint_files, "write", counted)
    data = mixture(2000, DIM, seed=27)
    counts = {}
    for name, params in (("one", {"segment_size": 0}), ("segments", {"segment_size": 200})):
        written.clear()
        with open_store(tmp_path / name) as store:
            store.create_collection("c", DIM, fingerprint="fp",
                                    index_params={"exact_threshold": 0, **params})
            for start in range(0, 2000, 50):
                store.upsert("c", [str(i) for i in range(start, start + 50)],
                             data[start:start + 50], None, fingerprint="fp")
                # (each batch merged before the next: points left pending in the growing
                # segment would count among the nodes its checkpoint rewrites, and how
                # many are left depends on the machine's load)
                assert store.wait_merged(60)
                assert store.wait_checkpointed(60)
            counts[name] = len(written)
    # one graph: every max(100, 50% of its nodes) points: at 100, 200, 400, 800, 1,600;
    # segments: every max(100, 50% of the changed ones, 200-400 points): 100-200 points
    assert counts["segments"] >= 2 * counts["one"] >= 8, counts
