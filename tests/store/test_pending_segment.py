"""Writes land in a pending segment that is searched exactly and merged into the HNSW
graph in the background: a point is searchable the moment its upsert returns, results
are the same before and after the merge, and searches keep being answered (correctly)
while a large write is merged slice by slice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.store import embedded, hnsw_graph, open_store
from embedops.store.hnsw_index import HnswIndex

DIM = 32


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pending_points_are_searched_exactly_then_merged() -> None:
    rng = np.random.default_rng(3)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    graph, later = _unit(rng, 500), _unit(rng, 200)
    index.add(np.arange(500), graph)
    index.add(np.arange(500, 700), later, defer=True)
    assert (len(index), index.pending, index.nodes) == (700, 200, 700)
    keys, scores = index.search(later[:20], 1)
    assert keys[:, 0].tolist() == list(range(500, 520))  # found at once, exactly
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert np.allclose(index.stored(np.array([3, 600])), np.stack([graph[3], later[100]]))
    assert set(index.keys().tolist()) == set(range(700))
    # a replaced graph point leaves the graph; a removed pending point leaves the segment
    index.add(np.array([7]), later[:1], defer=True)
    assert index.remove(np.array([650])) == 1 and index.pending == 200
    assert set(index.search(later[:1], 2)[0][0].tolist()) == {7, 500}
    assert 7 not in index.search(graph[7:8], 3)[0][0].tolist()
    queries = _unit(rng, 40)
    before = index.search(queries, 10)
    while index.pending:
        assert index.merge(64) > 0
    assert (len(index), index.pending, index.nodes) == (699, 0, 698)  # 7 and 500 share one
    after = index.search(queries, 10)
    assert np.allclose(before[1], after[1], atol=1e-5)  # same ranking, graph or segment
    assert all(set(b) == set(a) for b, a in zip(before[0].tolist(), after[0].tolist(),
                                                 strict=True))


def test_search_results_match_exact_during_a_background_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    base = _unit(rng, 3000)
    store.upsert("c", [f"b{i}" for i in range(3000)], base, None, fingerprint="fp")
    assert store.wait_merged()
    big = _unit(rng, 6000)
    queries = big[::97]
    answered: list[bool] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for i, q in zip(range(0, 6000, 97), queries, strict=True):
                hit = store.search("c", q, k=1)[0][0]
                answered.append(hit.id == f"n{i}" and hit.score > 0.999)

    store.upsert("c", [f"n{i}" for i in range(6000)], big, None, fingerprint="fp")
    pending_at_start = store.stats("c")["index_pending"]
    thread = threading.Thread(target=reader)
    thread.start()
    assert store.wait_merged(timeout=300)
    stop.set()
    thread.join()
    assert pending_at_start > 0  # the write returned before the graph took its points
    assert len(answered) >= len(queries) and all(answered)  # searched while merging
    stats = store.stats("c")
    assert (stats["points"], stats["index_pending"]) == (9000, 0)
    store.close()
    reopened = open_store(tmp_path / "s", read_only=True)
    assert reopened.search("c", big[5], k=1)[0][0].id == "n5"
    reopened.close()


def test_pending_points_count_toward_index_memory_at_once() -> None:
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(3000), _unit(np.random.default_rng(5), 3000), defer=True)
    pending = index.memory_bytes  # memory budgets see the points before the merge
    index.merge_all()
    assert 0.5 * index.memory_bytes <= pending <= 2.0 * index.memory_bytes


def test_the_merger_gives_way_while_writes_come_back_to_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge slice holds the index lock a write would wait out: while writes keep
    coming (here: the last one ended under a widened window ago) the segment is left
    alone, and once they stop it is merged without being asked."""
    rng = np.random.default_rng(17)
    monkeypatch.setattr(embedded, "WRITE_YIELD_WINDOW_S", 3600.0)
    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    points = _unit(rng, 2000)
    for lo in range(0, 2000, 200):
        store.upsert("c", [f"p{i}" for i in range(lo, lo + 200)], points[lo:lo + 200], None,
                     fingerprint="fp")
    time.sleep(1.0)  # the merger merges 2,000 points of 32-d in a fraction of this
    assert store.stats("c")["index_pending"] == 2000
    assert store.search("c", points[1234], k=1)[0][0].id == "p1234"  # searched exactly
    monkeypatch.setattr(embedded, "WRITE_YIELD_WINDOW_S", 0.01)
    assert store.wait_merged(timeout=120)
    assert store.stats("c")["index_pending"] == 0
    store.close()


def test_the_pending_matrix_follows_every_append_removal_and_merge() -> None:
    """Searches score the pending segment from a stacked matrix that writes append to in
    place; after any mix of appends (with ids given twice), replacements, removals and
    merge slices, a search returns the graph's candidates ranked together with exactly
    what scoring every pending point (as this test holds them) would give. The graph's
    own part is approximate (a threaded build may leave a point unreached), so it is taken
    from the graph search itself."""
    rng = np.random.default_rng(23)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    held: dict[int, np.ndarray] = {}
    index.add(np.arange(300), base := _unit(rng, 300))
    held.update(enumerate(base))
    for step in range(60):
        op = rng.integers(4)
        if op <= 1:  # append new points, or replace held ones (graph or pending)
            keys = rng.choice(np.arange(1000), size=int(rng.integers(1, 40)), replace=False)
            if op == 1:  # new ids, one given twice in the write
                keys = 1000 + 50 * step + np.arange(int(rng.integers(2, 40)))
                keys = np.concatenate([keys, keys[:1]])
            vectors = _unit(rng, len(keys))
            index.add(keys, vectors, defer=True)
            held.update(zip(keys.tolist(), vectors, strict=True))
        elif op == 2 and held:
            gone = rng.choice(list(held), size=min(5, len(held)), replace=False)
            index.remove(gone)
            for key in gone.tolist():
                held.pop(key)
        else:
            index.merge(int(rng.integers(1, 30)))
        # the stacked matrix holds exactly the segment's points, each with its vector
        stacked_keys, stacked = index._pending_arrays()
        assert sorted(stacked_keys.tolist()) == sorted(index._pending), f"step {step}"
        for key, row in zip(stacked_keys.tolist(), stacked, strict=True):
            assert np.array_equal(row, held[key]), f"step {step}"
        everything = np.array(list(held))
        own = rng.choice(everything, size=2, replace=False)  # held points find themselves
        queries = np.concatenate([_unit(rng, 2), np.stack([held[k] for k in own.tolist()])])
        keys, _ = index.search(queries, 5, ef=400)
        assert all(len(set(row)) == len(row) for row in keys.tolist()), f"step {step}"
        graph_keys, graph_scores = index._search_graph(queries, 5, 400, 0)
        waiting = np.array(sorted(index._pending), dtype=np.int64)
        matrix = np.stack([held[k] for k in waiting.tolist()]) if len(waiting) else \
            np.zeros((0, DIM), dtype=np.float32)
        candidates = np.concatenate([graph_keys, np.tile(waiting, (len(queries), 1))], axis=1)
        ranked = np.concatenate([graph_scores, queries @ matrix.T], axis=1)
        expected = np.take_along_axis(candidates, np.argsort(-ranked, axis=1)[:, :5], axis=1)
        assert keys.tolist() == expected.tolist(), f"step {step}"


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_one_query_with_pending_points_ranks_as_the_general_search(metric: str) -> None:
    """``search_one`` merges the pending segment's scores into the graph's itself; it
    must give the keys and scores ``search`` gives, through shared nodes, tombstones,
    padding, ties and an empty graph."""
    rng = np.random.default_rng(11)
    for case in range(12):
        index = HnswIndex(DIM, metric, "float32", {}, None)
        graph_n = [0, 3, 40, 400][case % 4]
        graph = _unit(rng, graph_n)
        if graph_n:
            index.add(np.arange(graph_n), graph)
            index.add(np.arange(10_000, 10_003), graph[:3])  # copies: a shared node
        pending = _unit(rng, [1, 5, 60][case % 3])
        if case % 2:
            pending[1:3] = pending[0]  # ties among the pending points
        if graph_n and case % 3 == 0:
            pending[0] = graph[graph_n - 1]  # a tie between the graph and the segment
        index.add(np.arange(20_000, 20_000 + len(pending)), pending, defer=True)
        if graph_n > 10:
            index.remove(np.arange(20, 30))  # tombstones
        for query in [*_unit(rng, 5), pending[0], *(graph[:2] if graph_n else [])]:
            for k in (1, 4, 10, 500):
                keys, scores = index.search(query[None, :], k, threads=1)
                real = keys[0] >= 0  # (the general search may pad; this path drops it)
                one_keys, one_scores = index.search_one(query[None, :], k)
                assert one_keys == keys[0][real].tolist(), (case, k)
                assert np.allclose(one_scores, scores[0][real], atol=1e-6), (case, k)


def test_the_merger_leaves_a_core_to_searches_and_takes_every_core_without_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While searches run, the merger's inserts use an OpenMP team of one thread fewer
    than the cores (``BACKGROUND_THREADS``); with no search lately, every core."""
    teams: list[tuple[str, int]] = []
    all_threads = hnsw_graph._all_threads

    def recorded() -> None:
        all_threads()
        teams.append((threading.current_thread().name, hnsw_graph._team.cap))

    monkeypatch.setattr(hnsw_graph, "_all_threads", recorded)
    monkeypatch.setattr(embedded, "MERGE_YIELD_WINDOW_S", 3600.0)  # one search: "searching"
    rng = np.random.default_rng(23)
    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    points = _unit(rng, 1200)
    store.search("c", points[0], k=1)
    store.upsert("c", [f"p{i}" for i in range(600)], points[:600], None, fingerprint="fp")
    assert store.wait_merged(timeout=120)
    beside_searches = {cap for name, cap in teams if name == "embedops-index-merge"}
    monkeypatch.setattr(embedded, "MERGE_YIELD_WINDOW_S", 0.0)  # no search lately
    teams.clear()
    store.upsert("c", [f"p{i}" for i in range(600, 1200)], points[600:], None,
                 fingerprint="fp")
    assert store.wait_merged(timeout=120)
    alone = {cap for name, cap in teams if name == "embedops-index-merge"}
    store.close()
    assert beside_searches == {embedded.BACKGROUND_THREADS}
    assert alone == {0}
