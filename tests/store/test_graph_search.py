"""The compiled single-query search (store/graph_search.py) against faiss's own search of
the same graph: the same answers but for ties, the same recall, removed nodes never
returned, padding, a view made again after inserts, batches on several threads, a
mapped checkpoint, and arguments it refuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.errors import InvalidVector
from embedops.store import graph_search, mapped_files, open_store
from embedops.store.hnsw_graph import HnswGraph
from tests.store.test_hnsw_graph import _save

DIM = 48


def _data(n: int, seed: int, clusters: int = 20, dim: int = DIM) -> np.ndarray:
    """Unit vectors around ``clusters`` centres (neighbours that are hard to tell apart)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _faiss_answers(graph: HnswGraph, queries: np.ndarray, k: int, ef: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """faiss's own search of ``graph``'s faiss index (positions mapped to keys), with the
    removed nodes filtered as the graph's faiss path filters them."""
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef
    if graph.removed:
        selector = faiss.IDSelectorBitmap(len(graph._alive), faiss.swig_ptr(graph._alive))
        params.sel = selector
    scores, positions = graph.graph.search(queries, k, params=params)
    return graph._labels[positions], scores


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth,
                                                                        strict=True)]))


@pytest.fixture(params=["avx512", "avx2", "plain"])
def kernels(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each version of the distance kernels (float32 and int8) this CPU runs (the module
    takes the widest)."""
    from embedops.store import _graph_search

    try:
        before = _graph_search._kernels(request.param)
    except ValueError:
        pytest.skip(f"this CPU has no {request.param}")
    yield request.param
    _graph_search._kernels(before)


def test_the_compiled_search_is_built() -> None:
    """The installation builds it (setup.py); without it every search goes through
    faiss, and nothing else would notice."""
    assert graph_search.GraphView is not None
    assert graph_search.compiled()


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_it_answers_as_faiss_does_with_the_same_recall(metric: str) -> None:
    data = _data(3000, seed=1) * (1.0 if metric == "cosine" else 4.0)
    queries = _data(200, seed=2) * (1.0 if metric == "cosine" else 4.0)
    graph = HnswGraph(DIM, metric, "float32", 16, 64)
    graph.add(np.arange(3000, dtype=np.int64) + 500, data)
    if metric == "cosine":
        truth = np.argsort(-(queries @ data.T), axis=1)[:, :10] + 500
    else:
        distances = ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)
        truth = np.argsort(distances, axis=1)[:, :10] + 500
    for ef in (10, 32, 128):
        keys, scores = graph.search(queries, 10, ef)
        want_keys, want_scores = _faiss_answers(graph, queries, 10, ef)
        same = np.mean([a == b for a, b in zip(keys.tolist(), want_keys.tolist(),
                                               strict=True)])
        assert same >= 0.9, (ef, same)  # (the rest: ties and a slightly other beam)
        assert abs(_recall(keys, truth) - _recall(want_keys, truth)) <= 0.01, ef
        # scores are the vectors' own: inner products, or squared L2 distances
        rows = data[keys - 500]
        exact = (np.einsum("qkd,qd->qk", rows, queries) if metric == "cosine"
                 else ((rows - queries[:, None, :]) ** 2).sum(-1))
        assert np.allclose(scores, exact, rtol=1e-5, atol=1e-5)
        order = scores if metric == "l2" else -scores
        assert (np.diff(order, axis=1) >= 0).all()  # best first
        agree = keys == want_keys  # (where both give the same key, the same score)
        assert np.allclose(scores[agree], want_scores[agree], rtol=1e-5, atol=1e-5)
    assert _recall(graph.search(queries, 10, 256)[0], truth) >= 0.98


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("dim", [1, 7, 8, 31, 33, 64, 100])  # (each kernel's steps and tail)
def test_float32_scores_are_the_vectors_own_in_every_dimension(metric: str, dim: int) -> None:
    """Every kernel's inner products and squared L2 distances, whatever the number of
    values against its steps of 8, 16, 32 or 64: the scores of the nodes found are
    those numpy computes, and a search as deep as the graph finds the exact top 10."""
    scale = 1.0 if metric == "cosine" else 3.0
    data, queries = _data(300, seed=40, dim=dim) * scale, _data(20, seed=41, dim=dim) * scale
    graph = HnswGraph(dim, metric, "float32", 16, 64)
    graph.add(np.arange(300, dtype=np.int64), data)
    assert graph._compiled_view() and graph.compiled
    keys, scores = graph.search(queries, 10, 300)
    rows = data[keys].astype(np.float64)
    exact = (np.einsum("qkd,qd->qk", rows, queries) if metric == "cosine"
             else ((rows - queries[:, None, :]) ** 2).sum(-1))
    assert np.allclose(scores, exact, rtol=1e-5, atol=1e-5)
    sims = (queries @ data.T if metric == "cosine"
            else -((queries[:, None, :] - data[None]) ** 2).sum(-1))
    best = np.sort(sims, axis=1)[:, ::-1][:, :10]
    found = np.sort(scores if metric == "cosine" else -scores, axis=1)[:, ::-1]
    assert np.allclose(found, best, rtol=1e-5, atol=1e-5)  # (ties may swap keys)


def test_one_query_answers_as_the_same_query_in_a_batch_on_any_thread_count() -> None:
    data = _data(2000, seed=3)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(2000, dtype=np.int64), data)
    queries = _data(64, seed=4)
    view = graph._compiled_view()
    batches = []
    for threads in (1, 2, 5):
        keys = np.empty((64, 10), dtype=np.int64)
        scores = np.empty((64, 10), dtype=np.float32)
        view.search_into(queries, 10, 40, keys, scores, threads)
        batches.append((keys.tolist(), scores.tolist()))
    assert batches[0] == batches[1] == batches[2]
    for i, query in enumerate(queries):
        one_keys, one_scores = graph.search_row(np.ascontiguousarray(query), 10, 40)
        assert one_keys == batches[0][0][i]
        assert np.array_equal(np.float32(one_scores), np.float32(batches[0][1][i]))


def test_removed_nodes_route_the_search_and_never_come_back_and_short_answers_pad() -> None:
    data = _data(1500, seed=5)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(1500, dtype=np.int64), data)
    graph.remove(np.arange(0, 1500, 2, dtype=np.int64))  # every other node
    queries = _data(50, seed=6)
    live = np.arange(1, 1500, 2)
    truth = live[np.argsort(-(queries @ data[live].T), axis=1)[:, :10]]
    keys, _ = graph.search(queries, 10, 64)
    assert (keys % 2 == 1).all()
    assert _recall(keys, truth) >= 0.9

    graph.remove(live[:-3])  # three live nodes left
    keys, scores = graph.search(queries[:2], 10, 1500)
    for row_keys, row_scores in zip(keys.tolist(), scores.tolist(), strict=True):
        assert set(row_keys[:3]) == set(live[-3:].tolist())
        assert row_keys[3:] == [-1] * 7 and row_scores[3:] == [-np.inf] * 7
    one_keys, one_scores = graph.search_row(np.ascontiguousarray(queries[0]), 5, 1500)
    assert one_keys[3:] == [-1, -1] and one_scores[3:] == [-np.inf, -np.inf]

    graph.remove(live[-3:])  # none live: every slot padding
    keys, scores = graph.search(queries[:1], 4, 64)
    assert keys.tolist() == [[-1] * 4] and (scores == -np.inf).all()


def test_l2_pads_with_infinite_distances() -> None:
    graph = HnswGraph(DIM, "l2", "float32", 16, 64)
    graph.add(np.arange(3, dtype=np.int64), _data(3, seed=7))
    keys, distances = graph.search_row(np.ascontiguousarray(_data(1, seed=8)[0]), 5, 16)
    assert keys[3:] == [-1, -1] and distances[3:] == [np.inf, np.inf]
    assert all(0 <= d < np.inf for d in distances[:3])


def test_a_view_is_made_again_after_inserts_and_grows() -> None:
    """faiss reallocates its arrays as a graph grows; a view of them is dropped at every
    insert (``HnswGraph.add``), including past the labels' capacity (1,024)."""
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    data = _data(3000, seed=9)
    for lo in range(0, 3000, 300):
        graph.add(np.arange(lo, lo + 300, dtype=np.int64), data[lo:lo + 300])
        view = graph._compiled_view()
        assert view
        # every node inserted so far is found, the newest included
        for i in (0, lo, lo + 299):
            keys, _ = graph.search_row(np.ascontiguousarray(data[i]), 1, 64)
            assert keys == [i]
    assert graph._compiled_view() is view  # (kept between inserts)


def test_searches_on_threads_beside_each_other_agree_with_one_thread() -> None:
    data = _data(2000, seed=10)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(2000, dtype=np.int64), data)
    queries = [np.ascontiguousarray(q) for q in _data(100, seed=11)]
    expected = [graph.search_row(q, 10, 50) for q in queries]
    seen: list[list[tuple[list[int], list[float]]]] = [[], [], []]

    def searching(out: list[tuple[list[int], list[float]]]) -> None:
        for _ in range(5):
            for q in queries:
                out.append(graph.search_row(q, 10, 50))

    threads = [threading.Thread(target=searching, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for out in seen:
        assert out == expected * 5


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_a_mapped_checkpoint_is_searched_where_it_lies(tmp_path: Path, dtype: str,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    from embedops.store import quantization

    monkeypatch.setattr(mapped_files, "MAP_MIN_BYTES", 0)

    def stored(rows: np.ndarray) -> np.ndarray:  # (an int8 graph holds codes)
        return np.ascontiguousarray(quantization.quantize(rows, 1.0), dtype=np.float32) \
            if dtype == "int8" else rows

    data = stored(_data(2000, seed=12))
    graph = HnswGraph(DIM, "cosine", dtype, 16, 64)
    graph.add(np.arange(2000, dtype=np.int64), data)
    graph.remove(np.arange(0, 100, dtype=np.int64))
    _save(graph, tmp_path / "g", tmp_path / "l.npy")
    loaded = HnswGraph.load(tmp_path / "g", tmp_path / "l.npy", DIM, "cosine", dtype)
    assert loaded is not None and loaded.mapped
    queries = stored(_data(40, seed=13))
    assert loaded._compiled_view()
    keys, scores = loaded.search(queries, 10, 64)
    want_keys, want_scores = graph.search(queries, 10, 64)
    assert keys.tolist() == want_keys.tolist()
    assert np.array_equal(scores, want_scores)
    assert (keys >= 100).all()
    loaded.add(np.arange(5000, 5010, dtype=np.int64), stored(_data(10, seed=14)))  # (an
    assert not loaded.mapped  # owned copy now: the view of the mapped file was dropped)
    assert loaded.search(stored(_data(10, seed=14))[3:4], 1, 64)[0].tolist() == [[5003]]


def _widest_kernels() -> str:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if {"avx2", "fma"} <= flags else "plain"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo")
def test_the_module_takes_the_widest_kernels_the_cpu_runs() -> None:
    from embedops.store import _graph_search

    assert _graph_search._kernels() == _widest_kernels()


@pytest.mark.usefixtures("kernels")
@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("dim", [DIM, 7, 37])  # (each kernel's tail loop too)
def test_an_int8_graph_is_searched_on_its_codes_as_faiss_searches_them(metric: str,
                                                                     dim: int) -> None:
    """An int8 graph holds the store's codes, each as a byte of value + 128 (faiss's
    QT_8bit_direct_signed); the compiled search reads them as they are, with the query
    as codes too (``HnswIndex._codes``): faiss's answers and scores; with removed nodes,
    which take places in faiss's queue and not in the compiled search's, at least
    faiss's recall."""
    from embedops.store import quantization

    data = _data(2500, seed=28, dim=dim) * (1.0 if metric == "cosine" else 3.0)
    clip = quantization.calibrate(data)
    codes = quantization.quantize(data, clip)
    graph = HnswGraph(dim, metric, "int8", 16, 64)
    graph.add(np.arange(2500, dtype=np.int64), codes)
    assert graph._compiled_view() and graph.compiled
    queries = np.ascontiguousarray(
        quantization.quantize(_data(100, seed=29, dim=dim) * (1.0 if metric == "cosine"
                                                              else 3.0), clip),
        dtype=np.float32)
    for ef in (16, 64):
        keys, scores = graph.search(queries, 10, ef)
        want_keys, want_scores = _faiss_answers(graph, queries, 10, ef)
        assert np.allclose(scores, want_scores, rtol=1e-6)
        assert (keys == want_keys).all(axis=1).mean() >= 0.9  # (the rest: equal scores)
        rows = codes[keys].astype(np.float64)
        exact = (np.einsum("qkd,qd->qk", rows, queries) if metric == "cosine"
                 else ((rows - queries[:, None, :]) ** 2).sum(-1))
        assert np.allclose(scores, exact, rtol=1e-6)
    graph.remove(np.arange(0, 2500, 9, dtype=np.int64))
    live = np.flatnonzero(np.arange(2500) % 9)
    rows = codes[live].astype(np.float64)
    sims = (queries @ rows.T if metric == "cosine"
            else -((queries[:, None, :] - rows[None]) ** 2).sum(-1))
    truth = live[np.argsort(-sims, axis=1)[:, :10]]
    for ef in (16, 64):
        keys, _ = graph.search(queries, 10, ef)
        assert (keys % 9 != 0).all()
        assert _recall(keys, truth) >= _recall(_faiss_answers(graph, queries, 10, ef)[0],
                                               truth) - 0.01


def test_float16_wide_graphs_and_restricted_searches_go_through_faiss() -> None:
    graph = HnswGraph(DIM, "cosine", "float16", 16, 64)
    graph.add(np.arange(10, dtype=np.int64), _data(10, seed=15))
    assert graph._compiled_view() is False and not graph.compiled
    wide = HnswGraph(DIM, "cosine", "float32", 600, 64)  # (1,200 links a node at level 0)
    wide.add(np.arange(50, dtype=np.int64), _data(50, seed=22))
    assert wide._compiled_view() is False
    assert wide.search_row(np.ascontiguousarray(_data(50, seed=22)[9]), 1, 16)[0] == [9]
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(500, dtype=np.int64), _data(500, seed=16))
    within = graph.restriction(np.arange(0, 500, 5))
    keys, _ = graph.search(_data(5, seed=17), 10, 64, within=within)
    assert (keys % 5 == 0).all()


def test_the_switch_sends_searches_to_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(graph_search.SWITCH, "faiss")
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(200, dtype=np.int64), _data(200, seed=18))
    assert not graph_search.compiled() and graph._compiled_view() is False
    assert graph.search_row(np.ascontiguousarray(_data(200, seed=18)[7]), 1, 32)[0] == [7]


def test_bad_arguments_are_refused_and_crash_nothing() -> None:
    data = _data(300, seed=19)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(300, dtype=np.int64), data)
    view = graph._compiled_view()
    with pytest.raises(ValueError, match="float32"):
        view.search(np.zeros(DIM + 1, dtype=np.float32), 10, 32)
    with pytest.raises(ValueError, match="float32"):
        view.search(np.zeros(DIM, dtype=np.float64), 10, 32)
    with pytest.raises(ValueError, match="k must be"):
        view.search(data[0], 0, 32)
    with pytest.raises(TypeError):
        view.search(data[0], 10)
    keys = np.empty((2, 10), dtype=np.int64)
    with pytest.raises(ValueError, match=r"\(rows, k\)"):
        view.search_into(data[:3], 10, 32, keys, np.empty((2, 10), dtype=np.float32), 1)
    frozen = np.empty((3, 10), dtype=np.float32)
    frozen.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        view.search_into(data[:3], 10, 32, np.empty((3, 10), dtype=np.int64), frozen, 1)
    arrays = dict(owner=graph.graph, vectors=data, links=np.zeros(4, dtype=np.int32),
                  offsets=np.zeros(301, dtype=np.uint64), level_begin=[0, 32, 48],
                  keys=np.arange(301, dtype=np.int64), alive=np.full(40, 255, np.uint8),
                  dim=DIM, nodes=300, entry=0, max_level=1, inner=True)
    graph_search.GraphView(**arrays)  # (well-formed)
    for wrong in ({"offsets": np.full(301, 10**6, dtype=np.uint64)},  # past the links
                  {"vectors": data[:10]},  # fewer vectors than nodes
                  {"entry": 300}, {"max_level": 5}, {"level_begin": "ab"}):
        with pytest.raises((ValueError, TypeError)):
            graph_search.GraphView(**{**arrays, **wrong})


def test_the_store_answers_alike_with_either_search(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data(2500, seed=20)
    queries = _data(60, seed=21)
    found = {}
    for way in ("compiled", "faiss"):
        if way == "faiss":
            monkeypatch.setenv(graph_search.SWITCH, "faiss")
        with open_store(tmp_path / way) as store:
            store.create_collection("c", DIM, fingerprint="fp",
                                    index_params={"exact_threshold": 0})
            store.upsert("c", [str(i) for i in range(2500)], data,
                         [{"i": i} for i in range(2500)], fingerprint="fp")
            assert store.wait_merged(60)
            store.delete("c", ids=[str(i) for i in range(0, 2500, 7)])
            hits = [store.search("c", q, 10, ef=64)[0] for q in queries]
            assert all(h.payload == {"i": int(h.id)} for row in hits for h in row)
            found[way] = np.array([[int(h.id) for h in row] for row in hits])
    assert (found["compiled"] % 7 != 0).all()
    live_truth = [[t for t in row if t % 7][:10] for row in
                  np.argsort(-(queries @ data.T), axis=1)[:, :30].tolist()]
    assert abs(_recall(found["compiled"], live_truth) - _recall(found["faiss"], live_truth)) \
        <= 0.02
    assert _recall(found["compiled"], live_truth) >= 0.95


def test_a_view_never_made_refuses_to_search() -> None:
    view = graph_search.GraphView.__new__(graph_search.GraphView)
    with pytest.raises(ValueError, match="not made"):
        view.search(np.zeros(DIM, dtype=np.float32), 10, 32)
    with pytest.raises(ValueError, match="not made"):
        view.search_into(np.zeros((1, DIM), dtype=np.float32), 1, 32,
                         np.empty((1, 1), dtype=np.int64), np.empty((1, 1), np.float32), 1)


def test_a_k_beyond_the_compiled_search_goes_to_faiss() -> None:
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    data = _data(100, seed=23)
    graph.add(np.arange(100, dtype=np.int64), data)
    k = graph_search.MAX_K + 1
    keys, _ = graph.search_row(np.ascontiguousarray(data[4]), k, 64)
    found = [key for key in keys if key >= 0]
    assert len(keys) == k and keys[0] == 4 and len(found) >= 90
    assert set(found) <= set(range(100)) and keys[-1] == -1


def test_the_visited_marks_are_cleared_when_their_epoch_wraps() -> None:
    """Each search marks the nodes it visits with the thread's epoch (2 bytes), and the
    marks are cleared when it wraps to 0: marks left from 65,535 searches before must
    not count as visited."""
    from embedops.store import _graph_search

    data = _data(3000, seed=24)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(3000, dtype=np.int64), data)
    queries = [np.ascontiguousarray(q) for q in _data(20, seed=25)]
    out: list[list[tuple[list[int], list[float]]]] = []

    epochs: list[int] = []

    def searching() -> None:  # (a fresh thread: its first searches mark with epochs 1..)
        first = [graph.search_row(q, 10, 64) for q in queries]
        epochs.append(_graph_search._scratch_epoch(65_535))  # the next search wraps
        again = [graph.search_row(q, 10, 64) for q in queries]  # (to 0: cleared, then 1)
        epochs.append(_graph_search._scratch_epoch(1))
        out.extend([first, again])

    assert graph._compiled_view()
    thread = threading.Thread(target=searching)
    thread.start()
    thread.join()
    assert epochs == [20, 20]  # (20 searches after the wrap: epochs 1..20 again)
    assert out[0] == out[1]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # (np.matrix's own)
@pytest.mark.parametrize("compiled", [True, False])
def test_a_single_query_is_judged_alike_with_or_without_the_compiled_norm(
        compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``quantization.one_query`` takes the squared norm and checks the layout in one
    compiled call (``squared_norm``), else with numpy: the same queries pass, at the
    same scale."""
    from embedops.store import _graph_search, quantization

    if not compiled:
        monkeypatch.setattr(quantization, "_squared_norm", None)
    rng = np.random.default_rng(26)
    q = rng.standard_normal(DIM).astype(np.float32)
    taken = quantization.one_query(q, DIM, "cosine")
    assert taken is not None and taken[0].shape == (1, DIM)
    assert taken[1] == pytest.approx(1 / np.linalg.norm(q.astype(np.float64)), rel=1e-6)
    assert quantization.one_query(q[None, :], DIM, "l2") is not None
    unaligned = np.frombuffer(b"x" + q.tobytes(), dtype=np.float32, offset=1)
    assert not unaligned.flags.aligned
    refused = [q.astype(np.float64), q.astype(">f4"), np.tile(q, 2)[::2],  # strided
               np.full(DIM, np.nan, np.float32), np.zeros(DIM, np.float32),
               np.full(DIM, 1e30, np.float32), q.reshape(2, DIM // 2), q[:-1],
               q.tolist(), np.stack([q, q]), np.asmatrix(q), unaligned,
               q.astype(object)]
    for vector in refused:
        assert quantization.one_query(vector, DIM, "cosine") is None
    assert quantization.one_query(np.full(DIM, 1e19, np.float32), DIM, "ip") is None
    # at the bound a float32 score can be squared within: taken exactly when ``prepare``
    # takes the same vector
    edge = np.sqrt(quantization.MAX_SQUARED_NORM / DIM)
    for factor in (0.999, 1.001):
        vector = np.full(DIM, edge * factor, dtype=np.float32)
        try:
            quantization.prepare(vector, DIM, "ip")
            prepared = True
        except InvalidVector:
            prepared = False
        assert (quantization.one_query(vector, DIM, "ip") is not None) == prepared
        assert prepared == (factor < 1)
    if compiled:
        assert _graph_search.squared_norm(q, DIM) == pytest.approx(
            float(np.dot(q.astype(np.float64), q)), rel=1e-12)
        assert _graph_search.squared_norm(b"abcd", 1) is None  # (bytes: format "B")
        assert _graph_search.squared_norm(q, 0) is None
        assert _graph_search.squared_norm(q, np.int64(DIM)) is not None  # (numpy ints)
        assert _graph_search.squared_norm(unaligned, DIM) is None


def test_removed_nodes_widen_the_compiled_search_by_half_as_much_as_faiss(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """faiss's queue of candidates holds removed nodes, the compiled search's only live
    ones: with a quarter of the graph removed, ``HnswIndex`` widens an unrestricted
    search by 2× that share on the compiled path and 4× on faiss's (a restricted search,
    always faiss's, by 4×)."""
    from embedops.store.hnsw_index import HnswIndex

    data = _data(2000, seed=27)
    depths = {}
    for way in ("compiled", "faiss"):
        if way == "faiss":
            monkeypatch.setenv(graph_search.SWITCH, "faiss")
        for dtype in ("float32", "int8"):
            index = HnswIndex(DIM, "cosine", dtype, {}, 1.0 if dtype == "int8" else None)
            index.add(np.arange(2000), data)
            index.remove(np.arange(500))
            assert index.index.compiled == (way == "compiled")
            depths[way, dtype] = (index._depth(64, 10), index._depth(64, 10, by_faiss=True))
    assert depths == {("compiled", "float32"): (96, 128), ("compiled", "int8"): (96, 128),
                      ("faiss", "float32"): (128, 128), ("faiss", "int8"): (128, 128)}
