"""One unfiltered query on a float graph takes a path of its own (``Searcher._hnsw_one``,
``HnswIndex.search_one``) and hands out hits whose payload is decoded when first read
(``Hit.from_text``). It must answer exactly as the general path answers the same query
in a batch, whatever the index holds: tombstones, pending points, shared nodes, fewer
points than ``k``, a cold or disabled hit cache.

Its collections keep one graph (``segment_size`` 0): the tests reach into it. A
collection of segments runs the same code in each segment (``test_segments.py``)."""

from __future__ import annotations

import pickle
import threading
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest

from embedops.errors import StoreError
from embedops.store import graph_search, open_store, protocol, quantization
from embedops.store.protocol import Hit

from .storedata import mixture

DIM = 16
N = 400


def _answers(store: object, queries: np.ndarray, k: int = 10
             ) -> tuple[list[list[Hit]], list[list[Hit]]]:
    """Each query alone (the single-query path) and in a batch (the general path)."""
    alone = [store.search("c", q, k=k)[0] for q in queries]  # type: ignore[attr-defined]
    batch = store.search("c", queries, k=k)  # type: ignore[attr-defined]
    return alone, batch


def _same(alone: list[list[Hit]], batch: list[list[Hit]]) -> None:
    """Same ids, payloads and scores (pending points are scored by a matrix product,
    whose last bits differ between one row and several)."""
    for one, many in zip(alone, batch, strict=True):
        assert [(h.id, h.payload) for h in one] == [(h.id, h.payload) for h in many]
        assert [h.score for h in one] == pytest.approx([h.score for h in many], abs=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("search", ["compiled", "faiss"])  # (store/graph_search.py)
def test_one_query_answers_as_the_same_query_in_a_batch(tmp_path: Path, metric: str,
                                                        dtype: str, cache: bool, search: str,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    if search == "faiss":
        monkeypatch.setenv(graph_search.SWITCH, "faiss")
    data = mixture(N, DIM, seed=5) * (1.0 if metric == "cosine" else 3.0)
    with open_store(tmp_path / "s", hit_cache_bytes=None if cache else 0) as store:
        store.create_collection("c", DIM, fingerprint="fp", metric=metric, dtype=dtype,
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(N)], data,
                     [{"i": i, "text": f"point {i}"} for i in range(N)], fingerprint="fp")
        assert store.wait_merged(60)
        queries = data[:40] + 0.01
        for _ in range(2):  # a cold hit cache, then a warm one
            alone, batch = _answers(store, queries)
            _same(alone, batch)
            assert all(len(hits) == 10 for hits in alone)
        if metric == "l2":  # scores are negated squared distances, best first
            assert all(h.score <= 0 for hits in alone for h in hits)
        assert all([h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
                   for hits in alone)

        store.delete("c", ids=[str(i) for i in range(0, N, 3)])  # tombstones in the graph
        alone, batch = _answers(store, queries)
        _same(alone, batch)
        assert all(len(hits) == 10 and all(int(h.id) % 3 for h in hits) for hits in alone)
        (live,) = store._indexes.live.values()  # (the search the graph took)
        assert bool(live.index.index._view) == (search == "compiled" and dtype == "float32")


def test_pending_points_shared_nodes_and_short_results_take_the_general_way(
        tmp_path: Path) -> None:
    data = mixture(N, DIM, seed=6)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(5)], data[:5], fingerprint="fp")
        assert store.wait_merged(60)
        alone, batch = _answers(store, data[:5])  # fewer points than k: padding
        _same(alone, batch)
        assert [len(hits) for hits in alone] == [5] * 5

        # copies of one vector share a graph node; the rest lands pending a merge
        store.upsert("c", [f"copy{i}" for i in range(4)], np.repeat(data[7:8], 4, axis=0),
                     fingerprint="fp")
        store.upsert("c", [str(i) for i in range(5, N)], data[5:], fingerprint="fp")
        alone, batch = _answers(store, data[:30])
        _same(alone, batch)
        copies = store.search("c", data[7], k=6)[0]
        assert {h.id for h in copies} >= {f"copy{i}" for i in range(4)} | {"7"}


def test_shared_nodes_keep_single_queries_on_their_own_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few identical vectors (a real corpus nearly always holds some) must not send
    every single query the general way: only a query whose results hold a shared node
    expands it, and it answers as the batch does."""
    data = mixture(N, DIM, seed=7)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(N)], data, fingerprint="fp")
        store.upsert("c", [f"copy{i}" for i in range(3)], np.repeat(data[7:8], 3, axis=0),
                     fingerprint="fp")
        assert store.wait_merged(60)
        (live,) = store._indexes.live.values()  # type: ignore[attr-defined]
        index = live.index
        assert index._groups and not index._pending
        general = index.search
        calls: list[int] = []
        monkeypatch.setattr(index, "search",
                            lambda *a, **kw: calls.append(1) or general(*a, **kw))
        queries = data[:40] + 0.01
        alone = [store.search("c", q, k=10)[0] for q in queries]
        copies = store.search("c", data[7], k=6)[0]
        assert calls == []
        assert [h.id for h in copies[:4]] == ["7", "copy0", "copy1", "copy2"]
        assert len({h.score for h in copies[:4]}) == 1
        _same(alone, store.search("c", queries, k=10))
        assert calls


def test_a_search_decodes_no_payload_nobody_reads(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = protocol.payload_of
    monkeypatch.setattr(protocol, "payload_of", lambda text: decoded.append(text) or real(text))
    data = mixture(N, DIM, seed=7)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(N)], data,
                     [{"i": i} for i in range(N)], fingerprint="fp")
        assert store.wait_merged(60)
        for _ in range(2):  # from SQLite, then from the hit cache
            hits = store.search("c", data[3], k=5)[0] + store.search("c", data[:2], k=5)[1]
            assert [h.id for h in hits[:1]] == ["3"] and not decoded
        first = hits[0].payload
        assert first == {"i": int(hits[0].id)} and len(decoded) == 1
        assert hits[0].payload is first and len(decoded) == 1  # decoded once


def test_hits_behave_as_the_frozen_value_they_were() -> None:
    lazy = Hit.from_text("a", 0.5, '{"x": [1, 2], "big": 1180591620717411303425}')
    eager = Hit("a", 0.5, {"x": [1, 2], "big": 2**70 + 1})
    assert lazy == eager and eager == lazy
    assert lazy != Hit("a", 0.25, eager.payload) and lazy != Hit("b", 0.5, eager.payload)
    assert repr(lazy) == repr(eager) == \
        "Hit(id='a', score=0.5, payload={'x': [1, 2], 'big': 1180591620717411303425})"
    assert pickle.loads(pickle.dumps(lazy)) == eager
    for hit in (lazy, eager):
        with pytest.raises(FrozenInstanceError):
            hit.id = "b"  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError):
            del hit.score
        with pytest.raises(TypeError):  # a dict payload is unhashable
            hash(hit)
    match lazy:
        case Hit(id, score, payload):
            assert (id, score, payload["x"]) == ("a", 0.5, [1, 2])


def test_many_hits_from_rows_are_the_hits_made_one_by_one() -> None:
    rows = [(7, "a", '{"x": 1}'), (9, "b", None), (4, "c", "{}")]
    hits = Hit.many_from_text(rows, [0.5, 0.25, -1.0], 2.0)
    assert hits == [Hit.from_text("a", 1.0, '{"x": 1}'), Hit.from_text("b", 0.5, None),
                    Hit("c", -2.0, {})]
    assert hits[1].payload is None and hits[0].payload == {"x": 1}
    assert all(type(hit) is Hit for hit in hits)  # (made as ``_OpenHit``s, then Hits)
    with pytest.raises(FrozenInstanceError):
        hits[0].id = "b"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del hits[2].score
    assert Hit.many_from_text(rows[:1], [0.5]) == [Hit("a", 0.5, {"x": 1})]
    with pytest.raises(ValueError):  # a score for every row
        Hit.many_from_text(rows, [0.5, 0.25])


def _filled(path: Path, metric: str = "cosine") -> tuple[object, np.ndarray]:
    data = mixture(N, DIM, seed=9)
    store = open_store(path)
    store.create_collection("c", DIM, fingerprint="fp", metric=metric,
                            index_params={"exact_threshold": 0, "segment_size": 0})
    store.upsert("c", [str(i) for i in range(N)], data, [{"i": i} for i in range(N)],
                 fingerprint="fp")
    assert store.wait_merged(60)
    return store, data


def test_a_search_answered_from_memory_takes_no_read_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-write handle's search answered from the index and the hit cache runs no
    SQL: it neither reads the catalog nor checks a read connection out of the pool. One
    that needs SQLite checks one out and gives it back."""
    store, data = _filled(tmp_path / "s")
    queries = data[:20] + 0.01
    warm = [store.search("c", q, k=5)[0] for q in queries]  # (fills the hit cache)
    pool = store._readers  # type: ignore[attr-defined]
    taken: list[object] = []
    checkout = pool.checkout

    def counted() -> object:
        taken.append(checkout())
        return taken[-1]

    monkeypatch.setattr(pool, "checkout", counted)
    idle = len(pool.idle)
    assert [store.search("c", q, k=5)[0] for q in queries] == warm
    assert taken == []
    deeper = store.search("c", queries[0], k=60)[0]  # (points no search returned yet)
    assert len(deeper) == 60 and len(taken) == 1
    store.upsert("c", ["new"], data[:1] * -1, None, fingerprint="fp")
    assert store.search("c", -data[0], k=1)[0][0].id == "new"
    assert len(taken) == 2  # (each connection given back once: none twice in the pool)
    assert len(pool.idle) == len({id(reader) for reader in pool.idle}) == idle
    assert store._local.reader is None  # type: ignore[attr-defined]
    store.upsert("c", ["other"], data[:1] * 2, None, fingerprint="fp")  # (row read again:
    with pytest.raises(StoreError):  # a failure after the checkout gives it back too)
        store.search("c", np.ones(DIM + 1, dtype=np.float32), k=5)
    with pytest.raises(StoreError):
        store.search("nope", queries[0], k=5)
    assert len(taken) == 4 and len(pool.idle) == idle
    assert all(any(reader is back for back in pool.idle) for reader in taken)
    assert store._local.reader is None  # type: ignore[attr-defined]
    store.close()


def test_a_search_opens_no_read_connection_under_the_index_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search that misses the hit cache checks a connection out under the index lock;
    the pool then has one idle, opened before the lock was taken, so a writer waiting for
    that lock never waits for a connection to open."""
    _filled(tmp_path / "s")[0].close()
    store = open_store(tmp_path / "s")  # (a new handle: an empty pool, a cold hit cache)
    pool, lock = store._readers, store._index_lock  # type: ignore[attr-defined]
    held_at_open: list[int] = []
    opener = pool._open

    def watched() -> object:
        held_at_open.append(lock._readers)
        return opener()

    monkeypatch.setattr(pool, "_open", watched)
    data = mixture(N, DIM, seed=1)
    assert len(store.search("c", data[0], k=20)[0]) == 20  # (reads the catalog row)
    for query in data[1:4]:
        busy = [pool.checkout() for _ in range(len(pool.idle))]  # (other threads' reads)
        assert len(store.search("c", query, k=20)[0]) == 20  # (misses the hit cache)
        for reader in busy:
            pool.checkin(reader)
    assert len(held_at_open) >= 4 and set(held_at_open) == {0}
    store.close()


def test_an_unpickled_float32_query_takes_the_single_query_path(tmp_path: Path) -> None:
    """A float32 array's dtype after pickling is an equal object, not numpy's own:
    the single query's path takes it as it takes any float32 row."""
    store, data = _filled(tmp_path / "s")
    query = pickle.loads(pickle.dumps(data[5] + 0.01))
    assert query.dtype == np.float32
    assert quantization.one_query(query, DIM, "cosine") is not None
    assert [h.id for h in store.search("c", query, k=5)[0]] == \
        [h.id for h in store.search("c", np.array(query), k=5)[0]]
    store.close()


def test_a_search_by_alias_follows_the_alias_when_it_moves(tmp_path: Path) -> None:
    store, data = _filled(tmp_path / "s")
    store.create_collection("d", DIM, fingerprint="fp",
                            index_params={"exact_threshold": 0, "segment_size": 0})
    store.upsert("d", [f"d{i}" for i in range(N)], data, None, fingerprint="fp")
    store.create_alias("live", "c")
    assert store.search("live", data[3], k=1)[0][0].id == "3"
    store.repoint_alias("live", "d")
    assert store.search("live", data[3], k=1)[0][0].id == "d3"
    store.close()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_a_query_laid_out_otherwise_in_memory_answers_as_its_contiguous_copy(
        tmp_path: Path, metric: str) -> None:
    """The single query's path hands the graph the caller's row where it lies, so a row
    that is not one contiguous float32 run (a strided view, a row of a Fortran-ordered
    matrix, big-endian values) must take the general way and answer the same."""
    store, data = _filled(tmp_path / "s", metric)
    for i in (3, 77, 250):
        query = data[i] + 0.01
        expected = store.search("c", np.ascontiguousarray(query), k=8)[0]
        interleaved = np.repeat(query, 2)  # (every value twice: the view reads every other)
        fortran = np.asfortranarray(np.stack([query, query * 2, -query]))
        for laid_out in (interleaved[::2], fortran[:1], query.astype(">f4")):
            assert np.array_equal(np.asarray(laid_out, dtype=np.float32).ravel(), query)
            got = store.search("c", laid_out, k=8)[0]
            assert [h.id for h in got] == [h.id for h in expected]
            assert [h.score for h in got] == pytest.approx([h.score for h in expected],
                                                           abs=1e-5)
    store.close()


def test_searches_from_threads_at_several_depths_answer_as_alone(tmp_path: Path) -> None:
    """Each thread's single searches share one pair of output arrays, made again when
    ``k`` changes: threads searching together, each changing ``k`` every query, get
    the answers each query gets alone."""
    store, data = _filled(tmp_path / "s")
    queries = data[::7] + 0.01
    ks = (3, 10, 1, 25)
    alone = {(i, k): [(h.id, h.score) for h in store.search("c", q, k=k)[0]]
             for i, q in enumerate(queries) for k in ks}
    wrong: list[tuple[int, int]] = []
    start = threading.Barrier(3, timeout=10)

    def search(shift: int) -> None:
        start.wait()
        for rep in range(5):
            for i, q in enumerate(queries):
                k = ks[(i + rep + shift) % len(ks)]
                if [(h.id, h.score) for h in store.search("c", q, k=k)[0]] != alone[(i, k)]:
                    wrong.append((i, k))

    threads = [threading.Thread(target=search, args=(shift,)) for shift in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    store.close()


@pytest.mark.parametrize("dtype,clip", [("float32", None), ("float16", None),
                                        ("int8", 1.0), ("int8", 127.0)])
def test_an_index_answers_one_row_as_it_answers_the_row_in_a_batch(dtype: str,
                                                                   clip: float | None) -> None:
    """``HnswIndex.search_one`` (a float graph's row searched into the thread's output
    arrays; an int8 graph's through its codes, whatever its clip) gives the keys and
    scores ``search`` gives the same row."""
    from embedops.store.hnsw_index import HnswIndex

    data = mixture(N, DIM, seed=11) * (100.0 if clip == 127.0 else 1.0)
    index = HnswIndex(DIM, "ip", dtype, {}, clip)
    index.add(np.arange(N, dtype=np.int64), data)
    for row in data[:30] + 0.01:
        keys, scores = index.search(row[None, :], 10)
        one_keys, one_scores = index.search_one(np.ascontiguousarray(row[None, :]), 10)
        assert one_keys == keys[0].tolist()
        assert one_scores == pytest.approx(scores[0].tolist(), rel=1e-6)
