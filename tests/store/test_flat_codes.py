"""A filter's matches scored on the codes the graph stores (``flat_codes``,
``HnswIndex.search_among``): the scores numpy gives over the same stored rows, for every
dtype and metric, with shared nodes, pending points, removed nodes and a mapped graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.store import mapped_files, open_store
from embedops.store.exact import scores, top_k
from embedops.store.flat_codes import flat_of
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import GROUP_BASE, HnswIndex

from .storedata import mixture

DIM = 32
CASES = [(dtype, metric) for dtype in ("float32", "float16", "int8")
         for metric in ("cosine", "l2")]


def _index(dtype: str, metric: str, n: int = 1500, seed: int = 3) -> HnswIndex:
    vectors = mixture(n, DIM, seed=seed) * (1.5 if metric == "l2" else 1.0)
    clip = float(np.abs(vectors).max()) if dtype == "int8" else None
    index = HnswIndex(DIM, metric, dtype, {}, clip)
    index.add(np.arange(n, dtype=np.int64), vectors)
    return index


def _expected(index: HnswIndex, queries: np.ndarray, keys: np.ndarray, k: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of ``keys`` by numpy over the rows the index holds (the plan before)."""
    code_metric = "l2" if index.metric == "l2" else "ip"
    sims = scores(index.codes(queries), index.stored(keys), code_metric)
    idx, vals = top_k(sims, k)
    return keys[idx], vals * np.float32(index._code_scale)


@pytest.mark.parametrize(("dtype", "metric"), CASES)
def test_the_stored_codes_give_numpys_scores(dtype: str, metric: str) -> None:
    index = _index(dtype, metric)
    keys = np.random.default_rng(1).choice(1500, 200, replace=False).astype(np.int64)
    queries = mixture(7, DIM, seed=4)
    found, values = index.search_among(queries, 10, keys)
    want_keys, want_values = _expected(index, queries, keys, 10)
    assert np.allclose(values, want_values, rtol=1e-5, atol=1e-4)
    # the same points but for exact ties, which may come in either order
    for got, want, vals in zip(found, want_keys, want_values, strict=True):
        untied = np.concatenate([[True], np.diff(vals) != 0]) & np.concatenate(
            [np.diff(vals) != 0, [True]])
        assert set(got[untied]) == set(want[untied])
    assert set(found.ravel()) <= set(keys)


def test_flat_of_keeps_the_order_of_the_positions_asked_for() -> None:
    graph = HnswGraph(DIM, "l2", "int8", 16, 40)
    codes = np.random.default_rng(2).integers(-127, 128, (300, DIM)).astype(np.float32)
    graph.add(np.arange(300, dtype=np.int64), codes)
    positions = np.array([250, 3, 77], dtype=np.int64)
    flat = flat_of(graph.graph, positions, "int8")
    assert flat.ntotal == 3
    distances, rows = flat.search(codes[[77]], 3)
    assert rows[0, 0] == 2 and distances[0, 0] == 0  # (row 2 holds position 77)
    assert np.array_equal(flat.reconstruct_n(0, 3), codes[positions])


def test_removed_nodes_pending_points_and_shared_nodes() -> None:
    index = _index("float32", "cosine", n=1000)
    vectors = mixture(1000, DIM, seed=3)
    index.remove(np.arange(0, 1000, 5, dtype=np.int64))  # tombstones
    index.add(np.arange(1000, 1010, dtype=np.int64), vectors[10:20])  # shared nodes
    index.add(np.arange(2000, 2050, dtype=np.int64), mixture(50, DIM, seed=9), defer=True)
    graph_keys = index.index.keys().tolist()
    assert index.pending == 50 and any(key >= GROUP_BASE for key in graph_keys)
    keys = np.array([k for k in range(1, 1000) if k % 5 and k % 3 == 0]
                    + list(range(1000, 1005)) + list(range(2000, 2050, 2)), dtype=np.int64)
    queries = np.concatenate([vectors[[10, 11, 12]], mixture(3, DIM, seed=9)[:3]])
    found, values = index.search_among(queries, 10, keys)
    want_keys, want_values = _expected(index, queries, keys, 10)
    assert np.allclose(values, want_values, atol=1e-5)
    for got, want in zip(found.tolist(), want_keys.tolist(), strict=True):
        assert set(got) == set(want)
    # a shared node stands only for its points among the keys: 1001 (a copy of 11) is
    # among them, 11 (not a multiple of 3) is not, and the two share a node
    assert index._group_of.get(1001) is not None
    assert index._group_of.get(1001) == index._group_of.get(11)
    second = found[1].tolist()
    assert 1001 in second and 11 not in second
    assert set(found.ravel().tolist()) <= set(keys.tolist())


def test_a_key_the_index_does_not_hold_gives_none() -> None:
    index = _index("float32", "cosine", n=300)
    index.remove(np.array([7], dtype=np.int64))
    queries = mixture(2, DIM, seed=4)
    assert index.search_among(queries, 5, np.array([1, 2, 7], dtype=np.int64)) is None
    assert index.search_among(queries, 5, np.array([1, 2, 99_999], dtype=np.int64)) is None
    found, _ = index.search_among(queries, 5, np.array([1, 2], dtype=np.int64))
    assert found.shape == (2, 2) and set(found.ravel().tolist()) == {1, 2}


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_a_mapped_graphs_codes_are_read_where_they_lie(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    monkeypatch.setattr(mapped_files, "MAP_MIN_BYTES", 1)
    data = mixture(3000, DIM, seed=5)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, dtype=dtype, fingerprint="fp",
                                index_params={"exact_threshold": 0},
                                payload_indexes=["b"])
        store.upsert("c", [str(i) for i in range(3000)], data,
                     [{"b": i % 100} for i in range(3000)], fingerprint="fp")
    queries = mixture(20, DIM, seed=6)
    where = {"field": "b", "eq": 7}  # 30 points: the selective plan
    with open_store(tmp_path / "s", read_only=True) as store:
        planned = store.search("c", queries, k=5, filter=where)
        assert store.stats("c")["index_mapped"] is True
        exact = store.search("c", queries, k=5, filter=where, exact=True)
    assert [[h.id for h in row] for row in planned] == [[h.id for h in row] for row in exact]


def test_what_a_search_finds_out_about_a_filters_keys_is_kept_until_the_index_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index("int8", "cosine", n=1000)
    vectors = mixture(1000, DIM, seed=3)
    lookups = []
    real = HnswGraph.positions_of

    def counted(self: HnswGraph, keys: np.ndarray) -> np.ndarray:
        lookups.append(len(keys))
        return real(self, keys)

    monkeypatch.setattr(HnswGraph, "positions_of", counted)
    keys = np.arange(0, 1000, 4, dtype=np.int64)  # (one array, as filter_matches keeps it)
    queries = vectors[[8, 9, 400]]
    first = index.search_among(queries, 5, keys)
    again = index.search_among(queries, 5, keys)
    assert first is not None and again is not None
    assert np.array_equal(first[0], again[0]) and len(lookups) == 1
    assert index.memory_bytes > index.index.memory_usage  # (the kept codes are counted)
    assert index.search_among(queries, 5, keys.copy()) is not None  # (another array)
    assert len(lookups) == 2
    # a change moves the index on: what was kept is not used
    index.add(np.array([8], dtype=np.int64), vectors[[400]], defer=True)  # 8 moved, pending
    moved = index.search_among(queries[2:], 5, keys)
    assert moved is not None and set(moved[0][0].tolist()[:2]) == {8, 400}
    at_old_place = index.search_among(queries[:1], 5, keys)
    assert at_old_place is not None and at_old_place[0][0, 0] != 8
    index.merge_all()
    merged = index.search_among(queries[2:], 5, keys)
    assert merged is not None and set(merged[0][0].tolist()[:2]) == {8, 400}
    index.remove(np.array([400], dtype=np.int64))
    assert index.search_among(queries, 5, keys) is None  # (400 is gone from the index)
    assert index.memory_bytes == index.index.memory_usage  # (older versions' dropped)
