"""The faiss HNSW graph under the store's index: keys, tombstones, renames, int8 codes,
checkpoints, and an index file of an earlier release."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.store import durable_files, graph_search, hnsw_graph, open_store, quantization
from embedops.store.checkpoint_files import read_manifest
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import HnswIndex

DIM = 32


def _unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _graph(n: int = 2000, dtype: str = "float32") -> tuple[HnswGraph, np.ndarray]:
    graph = HnswGraph(DIM, "cosine", dtype, 16, 64)
    vectors = _unit(n)
    graph.add(np.arange(1000, 1000 + n, dtype=np.int64), vectors)
    return graph, vectors


@pytest.fixture
def faiss_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches through faiss's own search (``graph_search``: the compiled one
    otherwise takes float32 graphs' unrestricted searches), for the tests of that path."""
    monkeypatch.setenv(graph_search.SWITCH, "faiss")


def _save(graph: HnswGraph, graph_path: Path, labels_path: Path) -> None:
    """The graph's two checkpoint files, written as a checkpoint writes them."""
    with durable_files.replacing(graph_path) as out:
        graph.write_graph(out.write)
    durable_files.write_npy(labels_path, graph.labels_copy())


def test_removed_nodes_are_never_returned_and_keys_come_back() -> None:
    graph, vectors = _graph()
    gone = np.arange(1000, 1000 + 2000, 2, dtype=np.int64)  # every other node
    assert graph.remove(gone) == 1000 and graph.remove(gone[:5]) == 0
    assert (len(graph), graph.size, graph.removed) == (1000, 2000, 1000)
    keys, _ = graph.search(vectors[:200], 10, 64)
    assert not np.isin(keys, gone).any()
    # each query's own node was removed for even rows; odd rows find themselves
    assert (keys[1::2, 0] == np.arange(1001, 1200, 2)).all()
    graph.add(gone[:3], vectors[[0, 2, 4]])  # removed keys come back as new nodes
    keys, _ = graph.search(vectors[[0, 2, 4]], 1, 64)
    assert keys[:, 0].tolist() == gone[:3].tolist() and graph.size == 2003


def test_a_renamed_node_answers_under_its_new_key() -> None:
    graph, vectors = _graph(500)
    assert graph.rename(1007, 1 << 62) and not graph.rename(1007, 5)
    keys, scores = graph.search(vectors[7:8], 1, 32)
    assert keys[0, 0] == 1 << 62 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(graph.get(np.array([1 << 62])), vectors[7:8])
    assert graph.contains(np.array([1007, 1 << 62])).tolist() == [False, True]


def test_search_pads_with_minus_one_when_fewer_nodes_live() -> None:
    graph, vectors = _graph(20)
    graph.remove(np.arange(1000, 1017))
    keys, _ = graph.search(vectors[:1], 10, 64)
    assert sorted(keys[0][keys[0] >= 0].tolist()) == [1017, 1018, 1019]
    assert (keys[0][3:] == -1).all()


@pytest.mark.parametrize("n", [1023, 1024, 1025, 2048])
def test_padding_is_minus_one_at_every_capacity_and_after_a_load(tmp_path: Path,
                                                                  n: int) -> None:
    # (faiss pads with position -1; the graph maps positions to keys by indexing, and
    # the label buffer's last slot must then be -1: sizes around its capacity, 1,024)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    vectors = _unit(n, seed=n)
    for lo in range(0, n, 512):  # (grown a batch at a time, as the store grows it)
        graph.add(np.arange(lo, min(lo + 512, n), dtype=np.int64) + 10_000,
                  vectors[lo:lo + 512])
    graph.remove(np.arange(10_000, 10_000 + n - 3, dtype=np.int64))
    live = {10_000 + n - 3, 10_000 + n - 2, 10_000 + n - 1}
    _save(graph, tmp_path / "g", tmp_path / "l.npy")
    loaded = HnswGraph.load(tmp_path / "g", tmp_path / "l.npy", DIM, "cosine", "float32")
    assert loaded is not None
    for g in (graph, loaded):
        keys, _ = g.search(vectors[-2:], 10, 4096)  # (deep enough to reach all 3)
        for row in keys.tolist():
            assert set(row[:3]) == live and row[3:] == [-1] * 7


def test_int8_graph_holds_the_stores_codes_and_scores_like_floats() -> None:
    vectors = _unit(1500, seed=3)
    clip = quantization.calibrate(vectors)
    index = HnswIndex(DIM, "cosine", "int8", {}, clip)
    index.add(np.arange(1500), vectors)
    codes = quantization.quantize(vectors[:50], clip)
    assert np.array_equal(index.stored(np.arange(50)), codes.astype(np.float32))
    keys, scores = index.search(vectors[:50], 5)
    exact = vectors[:50] @ vectors.T
    got = np.take_along_axis(exact, keys, axis=1)
    assert (keys[:, 0] == np.arange(50)).all()
    assert np.abs(scores - got).max() < 0.05  # code-space scores, scaled back


def test_checkpoint_round_trip_keeps_keys_tombstones_and_answers(tmp_path: Path) -> None:
    vectors = _unit(3000, seed=5)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(3000), vectors)
    index.remove(np.arange(0, 3000, 3))
    before = index.search(vectors[:100], 10)
    index.save(tmp_path, 1, 42)
    loaded = HnswIndex.load(tmp_path, 1, DIM, "cosine", "float32", {}, None)
    assert loaded is not None and loaded[1] == 42
    again = loaded[0]
    assert (len(again), again.removed) == (2000, 1000)
    after = again.search(vectors[:100], 10)
    assert np.array_equal(before[0], after[0])
    assert HnswIndex.load(tmp_path, 1, DIM, "cosine", "int8", {}, None) is None
    assert HnswIndex.load(tmp_path, 1, DIM + 1, "cosine", "float32", {}, None) is None
    manifest = read_manifest(tmp_path, 1)
    assert manifest is not None
    (tmp_path / manifest["labels"]).write_bytes(b"not an npy file")
    assert HnswIndex.load(tmp_path, 1, DIM, "cosine", "float32", {}, None) is None


def test_an_index_of_an_earlier_release_is_rebuilt_from_sqlite(tmp_path: Path) -> None:
    """A checkpoint manifest of the usearch era (format 1) is not read: the store
    rebuilds the graph from SQLite and answers as before."""
    vectors = _unit(1200, seed=9)
    path = tmp_path / "s"
    with open_store(path) as store:  # (one graph, as an earlier release kept)
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(1200)], vectors, None, fingerprint="fp")
    folder = path / "index"
    old = {"format": 1, "file": "1-1.usearch", "seq": 1, "dim": DIM, "metric": "cosine",
           "dtype": "float32", "clip": None}
    for stale in folder.iterdir():
        stale.unlink()
    (folder / "1-1.usearch").write_bytes(b"\0" * 64)
    (folder / "1.json").write_text(json.dumps(old))
    with open_store(path) as store:
        assert store.search("c", vectors[17], k=1)[0][0].id == "17"
        assert store.verify_index("c")["index_points"] == 1200
    manifest = read_manifest(folder, 1)
    assert manifest is not None and manifest["file"].endswith(".faiss")
    assert not (folder / "1-1.usearch").exists()


def test_a_loaded_graph_searches_before_its_key_map_is_built_and_writes_after(
        tmp_path: Path) -> None:
    """The key -> position map is built on first use (opening a large store skips it);
    counts, searches, adds, removes and renames agree whether it was built or not."""
    graph, vectors = _graph(1500)
    graph.remove(np.arange(1000, 1300, dtype=np.int64))
    _save(graph, tmp_path / "g.faiss", tmp_path / "g.npy")
    loaded = HnswGraph.load(tmp_path / "g.faiss", tmp_path / "g.npy", DIM, "cosine", "float32")
    assert loaded is not None
    assert (len(loaded), loaded.removed) == (1200, 300)
    keys, _ = loaded.search(vectors[300:310], 1, 64)
    assert keys[:, 0].tolist() == list(range(1300, 1310))
    assert loaded._positions is None  # a search did not build it
    counted = loaded.memory_usage  # a budget sees the map before it is built
    assert np.count_nonzero(loaded.positions_of(np.arange(1000, 2500)) >= 0) == 1200
    assert loaded.key_map_built and loaded.memory_usage == counted
    loaded = HnswGraph.load(tmp_path / "g.faiss", tmp_path / "g.npy", DIM, "cosine", "float32")
    assert loaded is not None
    loaded.add(np.array([7, 8], dtype=np.int64), vectors[[0, 1]])  # still not built
    assert len(loaded) == 1202 and loaded._positions is None
    assert loaded.remove(np.array([7, 1300], dtype=np.int64)) == 2  # (found by a scan)
    assert loaded.rename(8, 9) and not loaded.rename(1300, 5)
    assert len(loaded) == 1200 and not loaded.key_map_built  # (renamed by a scan too)
    assert set(loaded.keys().tolist()) == {9, *range(1301, 2500)}
    asked = np.arange(-1, 2501, dtype=np.int64)
    held = {9: 1501, **{key: key - 1000 for key in range(1301, 2500)}}
    assert loaded.positions_of(asked).tolist() == [held.get(k, -1) for k in asked.tolist()]
    keys, _ = loaded.search(vectors[[1, 301]], 1, 64)
    assert keys[:, 0].tolist() == [9, 1301]
    keys, _ = loaded.search(vectors[[0, 300]], 5, 64)  # their nodes were removed
    assert not np.isin(keys, [7, 1000, 1300]).any()


def _loaded(tmp_path: Path) -> tuple[HnswGraph, np.ndarray]:
    """A graph of keys 1000..2499 but 1000..1099, read back from its checkpoint files:
    its key map not built."""
    graph, vectors = _graph(1500)
    graph.remove(np.arange(1000, 1100, dtype=np.int64))
    _save(graph, tmp_path / "g.faiss", tmp_path / "g.npy")
    loaded = HnswGraph.load(tmp_path / "g.faiss", tmp_path / "g.npy", DIM, "cosine", "float32")
    assert loaded is not None and loaded._positions is None
    return loaded, vectors


@pytest.mark.parametrize("keys", [
    [1500, 1500, 7, -1, 1050, 2499],  # few: one pass over the labels a key
    [*range(1090, 1130), *range(2400, 2600), 1100, 1100, -1],  # many: a sorted lookup
])
def test_a_removal_before_the_key_map_is_built_scans_the_labels(
        tmp_path: Path, keys: list[int]) -> None:
    """The same tombstones, counts and answers as a removal through the map, and the
    map stays unbuilt (the first write after an open built it with the lock held)."""
    scanned, vectors = _loaded(tmp_path)
    mapped, _ = _loaded(tmp_path)
    assert np.count_nonzero(mapped.positions_of(np.arange(1000, 2500)) >= 0) == 1400
    asked = np.array(keys, dtype=np.int64)
    assert scanned.remove(asked) == mapped.remove(asked) > 0
    assert scanned._positions is None
    assert (len(scanned), scanned.removed) == (len(mapped), mapped.removed)
    assert np.array_equal(scanned.labels_copy(), mapped.labels_copy())
    assert scanned.keys().tolist() == sorted(mapped.keys().tolist())
    assert np.array_equal(scanned.search(vectors[::50], 5, 64)[0],
                          mapped.search(vectors[::50], 5, 64)[0])
    assert scanned.remove(asked) == 0  # (gone already)


def _positions(graph: HnswGraph) -> dict[int, int]:
    """Key -> position as the graph's key map answers, for every key it could hold."""
    asked = np.arange(-1, 3000, dtype=np.int64)
    found = graph.positions_of(asked)
    return {key: at for key, at in zip(asked.tolist(), found.tolist(), strict=True)
            if at >= 0}


def test_a_key_map_built_off_the_lock_is_taken_with_the_writes_made_meanwhile(
        tmp_path: Path) -> None:
    """Removals and inserts while the map is built off the lock (a steady replacement
    load) do not keep it from landing: the inserted nodes are added when it is taken,
    and the removed ones are seen in the labels."""
    graph, vectors = _loaded(tmp_path)
    job = graph.key_map_job()
    assert job is not None
    job.build()
    assert graph.take_key_map(job) and graph.key_map_job() is None
    assert _positions(graph) == {key: key - 1000 for key in range(1100, 2500)}
    graph, _ = _loaded(tmp_path)
    job = graph.key_map_job()
    assert job is not None
    graph.remove(np.array([1200, 1201, 77], dtype=np.int64))  # (while it is built)
    graph.add(np.array([1200, 5, 6], dtype=np.int64), vectors[:3])  # (1200 replaced)
    graph.remove(np.array([6], dtype=np.int64))
    job.build()
    assert graph.take_key_map(job)
    expected = {key: key - 1000 for key in range(1100, 2500) if key not in (1200, 1201)}
    assert _positions(graph) == {**expected, 1200: 1500, 5: 1501}
    assert graph.remove(np.array([1200, 1201, 5], dtype=np.int64)) == 2


def test_a_key_map_a_rename_made_stale_is_dropped(tmp_path: Path) -> None:
    graph, _ = _loaded(tmp_path)
    job = graph.key_map_job()
    assert job is not None
    job.build()
    assert graph.rename(1500, 7)  # (while the map was being built: it scans)
    assert graph._positions is None
    assert not graph.take_key_map(job) and graph._positions is None
    job = graph.key_map_job()
    assert job is not None
    job.build()
    assert graph.take_key_map(job)
    assert _positions(graph) == {**{key: key - 1000 for key in range(1100, 2500)
                                    if key != 1500}, 7: 500}


def test_writes_that_keep_a_key_map_from_landing_get_it_built_with_the_lock_held(
        tmp_path: Path) -> None:
    """A rename during every build drops it; after ``KEY_MAP_TRIES`` drops the map is
    built from the labels as they are (the first write's cost before)."""
    graph, _ = _loaded(tmp_path)
    for attempt in range(hnsw_graph.KEY_MAP_TRIES):
        job = graph.key_map_job()
        assert job is not None
        assert graph.rename(1200 + attempt, 5 + attempt)
        job.build()
        assert graph.take_key_map(job) == (attempt == hnsw_graph.KEY_MAP_TRIES - 1)
    held = _positions(graph)
    assert len(held) == 1400 and 1200 not in held and held[1203] == 203
    assert held[5] == 200 and held[7] == 202


def test_a_graph_answers_which_keys_it_holds_without_building_its_key_map(
        tmp_path: Path) -> None:
    """(A load checks its shared nodes this way: a collection with copies of vectors
    built the map at every load.)"""
    graph, _ = _loaded(tmp_path)
    asked = np.array([5, 1000, 1099, 1100, 2499, 2500, -1], dtype=np.int64)
    assert graph.contains(asked).tolist() == [False, False, False, True, True, False, False]
    assert graph._positions is None
    assert graph.contains(asked).tolist() == (graph.positions_of(asked) >= 0).tolist()
    assert graph.key_map_built


def test_an_empty_batch_of_queries_gets_empty_answers() -> None:
    graph, _ = _graph(50)
    keys, scores = graph.search(np.zeros((0, DIM), dtype=np.float32), 3, 16)
    assert keys.shape == scores.shape == (0, 3)
    index = HnswIndex(DIM, "cosine", "int8", {}, 0.5)
    index.add(np.arange(50), _unit(50))
    keys, scores = index.search(np.zeros((0, DIM), dtype=np.float32), 3)
    assert keys.shape == scores.shape == (0, 3)


@pytest.mark.usefixtures("faiss_search")
def test_one_query_searches_without_an_openmp_team_and_leaves_the_setting() -> None:
    """A single query runs on the calling thread alone (an OpenMP team for it left a
    worker spinning on the core another searching thread needed); a batch keeps the
    thread's own setting, and so does the thread afterwards (a graph insert on it still
    uses every core)."""
    graph, vectors = _graph(500)
    seen: list[tuple[int, int]] = []
    after: list[int] = []

    class Spy:  # records the OpenMP setting each search of the faiss graph runs under
        def __init__(self, real: object) -> None:
            self.real = real

        def search_c(self, n: int, *args: object) -> None:
            seen.append((n, faiss.omp_get_max_threads()))
            self.real.search_c(n, *args)  # type: ignore[attr-defined]

    graph.graph = Spy(graph.graph)  # type: ignore[assignment]

    def searching_thread() -> None:
        faiss.omp_set_num_threads(3)
        assert graph.search(vectors[:1], 5, 32)[0][0, 0] == 1000
        assert graph.search(vectors[:4], 5, 32)[0][:, 0].tolist() == [1000, 1001, 1002, 1003]
        after.append(faiss.omp_get_max_threads())

    thread = threading.Thread(target=searching_thread)
    thread.start()
    thread.join()
    assert seen == [(1, 1), (4, 3)] and after == [3]


@pytest.mark.usefixtures("faiss_search")
def test_a_thread_of_single_queries_sets_its_openmp_team_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each faiss call lets go of the interpreter lock (a hand-over to another searching
    thread): the team is set when a thread switches between single queries and calls
    that spread over the cores, not around every query."""
    graph, vectors = _graph(500)
    real = faiss.omp_set_num_threads
    calls: list[int] = []
    monkeypatch.setattr(faiss, "omp_set_num_threads", lambda n: calls.append(n) or real(n))
    steps: list[tuple[str, list[int]]] = []

    def searching_thread() -> None:
        own = faiss.omp_get_max_threads()
        for i in range(20):
            assert graph.search(vectors[i:i + 1], 5, 32)[0][0, 0] == 1000 + i
        steps.append(("singles", list(calls)))
        graph.search(vectors[:3], 5, 32)
        graph.get(np.arange(1000, 1003, dtype=np.int64))
        graph.add(np.arange(5000, 5010, dtype=np.int64), _unit(10))
        steps.append(("batch, get, add", list(calls)))
        graph.search(vectors[:1], 5, 32)
        steps.append(("single", list(calls)))
        steps.append(("own", [own]))

    thread = threading.Thread(target=searching_thread)
    thread.start()
    thread.join()
    own = steps[-1][1][0]
    assert steps[:-1] == [("singles", [1]), ("batch, get, add", [1, own]),
                          ("single", [1, own, 1])]


def test_a_capped_thread_inserts_with_a_smaller_openmp_team_and_others_keep_theirs(
) -> None:
    """``cap_team``: background inserts beside searches leave a core to them. The cap
    is the calling thread's alone; a single query still runs on one thread, and the
    thread's own setting comes back once the cap is lifted."""
    graph, _ = _graph(200)
    seen: dict[str, int] = {}

    def capped() -> None:
        faiss.omp_set_num_threads(4)  # (the thread's own setting, whatever the cores)
        hnsw_graph.cap_team(1)
        graph.add(np.arange(5000, 5010, dtype=np.int64), _unit(10, seed=5))
        seen["capped add"] = faiss.omp_get_max_threads()
        graph.search(_unit(1, seed=6), 3, 16)
        seen["single query"] = faiss.omp_get_max_threads()
        graph.add(np.arange(6000, 6010, dtype=np.int64), _unit(10, seed=7))
        seen["capped add after a query"] = faiss.omp_get_max_threads()
        hnsw_graph.cap_team(0)
        graph.add(np.arange(7000, 7010, dtype=np.int64), _unit(10, seed=8))
        seen["add after the cap"] = faiss.omp_get_max_threads()

    def other() -> None:
        faiss.omp_set_num_threads(3)
        graph.search(_unit(4, seed=9), 3, 16)  # a batch: the thread's own team
        seen["another thread's batch"] = faiss.omp_get_max_threads()

    for target in (capped, other):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert seen == {"capped add": 1, "single query": 1, "capped add after a query": 1,
                    "add after the cap": 4, "another thread's batch": 3}


@pytest.mark.usefixtures("faiss_search")
@pytest.mark.parametrize("failing", ["found array", "found pointer"])
def test_a_single_row_search_failing_as_k_changes_leaves_the_old_outputs_whole(
        monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """A thread's output arrays for single-row searches are made again when ``k``
    changes; faiss is handed raw pointers to them. A failure partway (a ``MemoryError``
    at a large ``k``, an interrupt) must leave the thread's arrays and pointers as they
    were, not a pointer to a freed array, nor arrays smaller than the ``k`` recorded."""
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    vectors = _unit(300, seed=4)
    graph.add(np.arange(300, dtype=np.int64), vectors)
    row = np.ascontiguousarray(vectors[7] + 0.01, dtype=np.float32)
    row /= np.linalg.norm(row)

    def expected(k: int) -> tuple[list[int], list[float]]:
        keys, scores = graph.search(row[None, :], k, 64)
        return keys[0].tolist(), scores[0].tolist()

    assert graph.search_row(row, 10, 64) == expected(10)  # (the thread's arrays for 10)
    if failing == "found array":
        empty = np.empty

        def failing_empty(shape: object, dtype: object = float) -> np.ndarray:
            if shape == (1, 20) and dtype == np.int64:
                raise MemoryError
            return empty(shape, dtype=dtype)

        monkeypatch.setattr(np, "empty", failing_empty)
    else:
        pointer = faiss.swig_ptr

        def failing_pointer(array: np.ndarray) -> object:
            if array.dtype == np.int64 and array.shape == (1, 20):
                raise KeyboardInterrupt
            return pointer(array)

        monkeypatch.setattr(faiss, "swig_ptr", failing_pointer)
    with pytest.raises((MemoryError, KeyboardInterrupt)):
        graph.search_row(row, 20, 64)
    monkeypatch.undo()
    for k in (10, 20, 10, 3):  # (the old arrays whole; each k after answers right)
        keys, scores = graph.search_row(row, k, 64)
        want_keys, want_scores = expected(k)
        assert keys == want_keys
        assert scores == pytest.approx(want_scores, abs=1e-6)


@pytest.mark.usefixtures("faiss_search")
def test_a_single_row_search_at_a_huge_k_keeps_no_arrays_after() -> None:
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    vectors = _unit(300, seed=5)
    graph.add(np.arange(300, dtype=np.int64), vectors)
    row = np.ascontiguousarray(vectors[3])
    assert graph.search_row(row, 10, 64)[0][0] == 3
    kept = hnsw_graph._row_output.slots
    big = hnsw_graph.ROW_OUTPUT_KEPT_MAX + 1
    keys, scores = graph.search_row(row, big, 64)
    assert len(keys) == len(scores) == big and keys[0] == 3 and keys[-1] == -1
    assert hnsw_graph._row_output.slots is kept  # (the arrays for 10 still the thread's)
    assert graph.search_row(row, 10, 64) == tuple(x[0].tolist() for x in
                                                  graph.search(row[None, :], 10, 64))
