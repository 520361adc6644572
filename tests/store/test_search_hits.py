"""A single search's hits made in the graph search's own call (``GraphView.hits``,
``HnswGraph.search_hits``, ``HnswIndex.search_hits``): the same hits as the search
followed by ``hit_rows.cached_hits``, the search's own lists whenever some point found
is not cached or fewer than ``k`` are found, arguments refused, no reference leaked,
and the store's single searches taking that call once the hit cache is warm, straight
from the store (``EmbeddedStore._direct``) until the index changes."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.errors import StoreError
from embedops.store import _graph_search, graph_search, hit_rows, hnsw_graph, open_store
from embedops.store.catalog import lookup
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import HnswIndex
from embedops.store.protocol import Hit
from embedops.store.search import Searcher
from embedops.store.shared_lock import SharedLock

from .storedata import mixture

DIM = 24
N = 600


def _cached(keys: range | list[int]) -> dict[int, tuple[int, str, str]]:
    return {key: (key, f"doc-{key}", f'{{"n": {key}}}') for key in keys}


def _graph(metric: str, n: int = N) -> tuple[HnswGraph, np.ndarray]:
    data = mixture(n, DIM, seed=3) * (1.0 if metric == "cosine" else 3.0)
    graph = HnswGraph(DIM, metric, "float32", 16, 64)
    graph.add(np.arange(n, dtype=np.int64) + 100, data)
    return graph, data


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_hits_made_in_the_search_equal_the_hits_made_after_it(metric: str) -> None:
    graph, data = _graph(metric)
    view = graph._compiled_view()
    assert view
    cached = _cached(range(100, 100 + N))
    for query in data[:30] + 0.01:
        made = view.hits(query, 10, 40, cached, 0.5)
        keys, scores = view.search(query, 10, 40)
        # the store's scores: inner products, or minus the squared L2 distance
        store_scores = scores if metric == "cosine" else [-s for s in scores]
        assert type(made) is list and [type(h) for h in made] == [Hit] * 10
        assert made == hit_rows.python_hits(cached, keys, store_scores, 0.5)
        assert [h.id for h in made] == [f"doc-{key}" for key in keys]
        assert made[0].payload == {"n": keys[0]}
        assert graph.search_hits(query[None, :], 10, 40, cached, 0.5) == made


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_a_point_not_cached_or_a_short_answer_gives_the_search_lists(metric: str) -> None:
    graph, data = _graph(metric)
    view = graph._compiled_view()
    query = data[5] + 0.01
    keys, scores = view.search(query, 10, 40)
    for missing in (keys[0], keys[9]):  # (the first and the last found)
        cached = _cached([key for key in range(100, 100 + N) if key != missing])
        assert view.hits(query, 10, 40, cached, 2.0) == (keys, scores)
    assert view.hits(query, 10, 40, {}, 1.0) == (keys, scores)

    small, few = _graph(metric, n=3)
    padded = small._compiled_view().hits(few[0], 5, 16, _cached(range(100, 103)), 1.0)
    assert padded == small._compiled_view().search(few[0], 5, 16)
    assert padded[0][3:] == [-1, -1]


def test_bad_arguments_are_refused_and_crash_nothing() -> None:
    graph, data = _graph("cosine")
    view = graph._compiled_view()
    cached = _cached(range(100, 100 + N))
    with pytest.raises(TypeError, match="dict"):
        view.hits(data[0], 10, 40, list(cached.items()), 1.0)
    with pytest.raises(TypeError):
        view.hits(data[0], 10, 40, cached, "high")
    with pytest.raises(TypeError, match="takes 5 arguments"):
        view.hits(data[0], 10, 40, cached)
    with pytest.raises(ValueError, match="float32"):
        view.hits(np.zeros(DIM + 1, dtype=np.float32), 10, 40, cached, 1.0)
    with pytest.raises(ValueError, match="k must be"):
        view.hits(data[0], 0, 40, cached, 1.0)
    with pytest.raises(TypeError):  # (a cached row that is no sequence)
        view.hits(data[0], 10, 40, dict.fromkeys(cached, 42), 1.0)
    with pytest.raises(IndexError):  # (a cached row too short)
        view.hits(data[0], 10, 40, {key: (key, "x") for key in cached}, 1.0)
    never_made = graph_search.GraphView.__new__(graph_search.GraphView)
    with pytest.raises(ValueError, match="not made"):
        never_made.hits(data[0], 10, 40, cached, 1.0)
    assert len(view.hits(data[0], 10, 40, cached, 1.0)) == 10  # (still searches)


def test_no_reference_is_kept_or_lost() -> None:
    graph, data = _graph("cosine")
    view = graph._compiled_view()
    cached = _cached(range(100, 100 + N))
    query = data[0]
    keys, _ = view.search(query, 10, 40)
    rows = [cached[key] for key in keys]
    partial = {key: row for key, row in cached.items() if key != keys[9]}
    before = [(sys.getrefcount(row), sys.getrefcount(row[1]), sys.getrefcount(row[2]))
              for row in rows]
    for _ in range(500):
        hits = view.hits(query, 10, 40, cached, 1.0)
        assert type(hits) is list and hits[0].payload == {"n": keys[0]}
        del hits
        assert type(view.hits(query, 10, 40, partial, 1.0)) is tuple
    gc.collect()
    assert [(sys.getrefcount(row), sys.getrefcount(row[1]), sys.getrefcount(row[2]))
            for row in rows] == before


def test_without_a_hit_class_the_search_gives_its_lists() -> None:
    """``GraphView.hits`` before ``use(Hit)`` (``hit_rows`` never imported, or a ``Hit``
    laid out otherwise, which it then refuses to fill in) gives the search's lists for
    the caller to make hits of, not an error. The package gives ``use`` its ``Hit`` on
    import, so the extension is loaded alone, in a process of its own, and searches a
    graph of three nodes laid out by hand as faiss lays out a graph's arrays."""
    script = (
        "import importlib.machinery, importlib.util, sys\n"
        "import numpy as np\n"
        "loader = importlib.machinery.ExtensionFileLoader('_graph_search', sys.argv[1])\n"
        "spec = importlib.util.spec_from_loader('_graph_search', loader)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "loader.exec_module(module)\n"
        "vectors = np.eye(3, 4, dtype=np.float32)\n"
        "view = module.GraphView(\n"
        "    owner=vectors, vectors=vectors, level_begin=[0, 4],\n"
        "    links=np.array([1, 2, -1, -1, 0, 2, -1, -1, 0, 1, -1, -1], dtype=np.int32),\n"
        "    offsets=np.array([0, 4, 8, 12], dtype=np.uint64),\n"
        "    keys=np.array([10, 11, 12], dtype=np.int64), alive=np.array([7], np.uint8),\n"
        "    dim=4, nodes=3, entry=0, max_level=0, inner=True)\n"
        "cached = {key: (key, str(key), '{}') for key in (10, 11, 12)}\n"
        "found = view.hits(vectors[1], 3, 8, cached, 1.0)\n"
        "assert found == view.search(vectors[1], 3, 8) and found[0][0] == 11, found\n"
        "print('lists')\n")
    done = subprocess.run([sys.executable, "-c", script, _graph_search.__file__],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lists"


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_an_index_gives_the_hits_of_its_single_search(metric: str) -> None:
    """Where the graph alone answers, ``HnswIndex.search_hits`` gives the hits
    ``search_one`` and ``cached_hits`` give; otherwise (pending points, shared nodes
    among the found, more asked than live nodes, an int8 graph) ``search_one``'s lists."""
    data = mixture(N, DIM, seed=9) * (1.0 if metric == "cosine" else 3.0)
    index = HnswIndex(DIM, metric, "float32", {}, None)
    index.add(np.arange(N, dtype=np.int64), data)
    cached = _cached(range(N))
    for row in (data[:20] + 0.01):
        query = np.ascontiguousarray(row[None, :])
        made = index.search_hits(query, 10, None, cached, 0.25)
        keys, values = index.search_one(query, 10)
        assert type(made) is list
        assert made == hit_rows.cached_hits(cached, keys, values, 0.25)

    query = np.ascontiguousarray(data[7:8])
    index.add(np.array([N], dtype=np.int64), data[7:8])  # shares node 7's vector
    assert index._groups
    lists = index.search_hits(query, 10, None, _cached(range(N + 1)), 1.0)
    assert lists == index.search_one(query, 10) and {7, N} <= set(lists[0])
    assert type(index.search_hits(query, N + 1, None, _cached(range(N + 1)), 1.0)) is tuple

    index.add(np.array([N + 1], dtype=np.int64), data[8:9] + 0.02, defer=True)  # pending
    assert index._pending
    near = np.ascontiguousarray(data[8:9] + 0.02)  # (the pending point among the first)
    lists = index.search_hits(near, 10, None, _cached(range(N + 2)), 1.0)
    assert lists == index.search_one(near, 10) and N + 1 in lists[0][:2]

    codes = HnswIndex(DIM, metric, "int8", {}, 1.0 if metric != "l2" else 3.0)
    codes.add(np.arange(N, dtype=np.int64), data)
    assert codes.search_hits(query, 10, None, cached, 1.0) == codes.search_one(query, 10)


@pytest.mark.parametrize("segment_size", [0, 200_000])
def test_the_stores_single_searches_take_the_one_call_once_the_cache_is_warm(
        tmp_path: Path, segment_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(N, DIM, seed=4)
    with open_store(tmp_path / "s") as store:
        _graphed(store, data, segment_size=segment_size)
        queries = data[:25] + 0.01
        cold = [store.search("c", q, k=10)[0] for q in queries]  # (fills the hit cache)
        calls: list[int] = []
        made = graph_search.GraphView.hits
        (live,) = store._indexes.live.values()
        graph = live.index.segments[0].index if segment_size else live.index.index
        view = graph._compiled_view()

        class Counted:
            def __bool__(self) -> bool:
                return True

            def hits(self, *args: object) -> object:
                calls.append(1)
                return made(view, *args)

        monkeypatch.setattr(graph, "_view", Counted())
        store._direct.clear()  # (the kept plans hold the view the cold searches took)
        warm = [store.search("c", q, k=10)[0] for q in queries]
        assert len(calls) == len(queries)
        assert warm == cold
        assert all(h.payload == {"i": int(h.id)} for hits in warm for h in hits)


def _counting_layers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the single searches that go through the index's layers
    (``Searcher._hnsw_one``) rather than straight to the compiled search."""
    layered: list[int] = []
    through = Searcher._hnsw_one

    def counted(self: Searcher, *args: object) -> object:
        layered.append(1)
        return through(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Searcher, "_hnsw_one", counted)
    return layered


def _graphed(store: Any, data: np.ndarray, payloads: bool = True, **params: Any) -> None:
    """Collection "c" of ``store`` holding ``data`` (ids "0", "1", ...; payloads
    ``{"i": i}``, or none), its graph searched whatever its size and every point merged."""
    store.create_collection("c", DIM, fingerprint="fp", index_params={
        "exact_threshold": 0, **params})
    store.upsert("c", [str(i) for i in range(len(data))], data,
                 [{"i": i} for i in range(len(data))] if payloads else None, fingerprint="fp")
    assert store.wait_merged(60)


def _sections(store: object, since: int) -> int:
    """Exclusive sections of the store's index lock begun since its generation was
    ``since`` (a background merge or checkpoint may take one at any time; each sends
    the next plain search through the layers once)."""
    return (store._index_lock.generation - since + 1) // 2  # type: ignore[attr-defined]


def test_the_index_locks_generation_is_odd_inside_each_outermost_exclusive_section() -> None:
    ended: list[int] = []
    lock = SharedLock(on_exclusive_end=lambda: ended.append(lock.generation))
    assert lock.generation == 0
    with lock.shared():
        assert lock.generation == 0
    with lock.exclusive():
        assert lock.generation == 1
        with lock.exclusive(), lock.shared():  # (reentrant; shared inside its own)
            assert lock.generation == 1
        assert lock.generation == 1 and not ended
    assert lock.generation == 2 and ended == [2]
    with lock.exclusive():
        pass
    assert lock.generation == 4 and ended == [2, 4]


def test_a_plain_search_goes_straight_to_the_compiled_search_until_the_index_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(N, DIM, seed=5)
    queries = data[:20] + 0.01
    with open_store(tmp_path / "s") as store:
        _graphed(store, data)
        cold = [store.search("c", q, k=10)[0] for q in queries]  # (fills the hit cache)
        layered = _counting_layers(monkeypatch)
        since = store._index_lock.generation
        warm = [store.search("c", q, k=10)[0] for q in queries]
        assert warm == cold and len(layered) <= _sections(store, since)  # (straight)
        layered.clear()
        since = store._index_lock.generation
        straight = [store.search("c", q, k=5, ef=32)[0] for q in queries[:3]]
        assert [store.search("c", q, k=10)[0] for q in queries[:3]] == cold[:3]
        # (a new k and ef: the layers once, then straight; k 10 still straight)
        assert 1 <= len(layered) <= 1 + _sections(store, since)
        store._direct.clear()
        monkeypatch.setattr(store, "_keep_direct", lambda *args: None)
        assert [store.search("c", q, k=5, ef=32)[0] for q in queries[:3]] == straight
        monkeypatch.undo()
        # a write: the point written (a query's own vector) is found at once, first,
        # while it waits in the pending segment (through the layers), and after its merge
        store.upsert("c", ["new"], queries[:1], [{"i": -1}], fingerprint="fp")
        assert store.search("c", queries[0], k=10)[0][0].id == "new"
        assert store.wait_merged(60)
        store.search("c", queries[0], k=10)
        layered = _counting_layers(monkeypatch)
        since = store._index_lock.generation
        first = store.search("c", queries[0], k=10)[0]
        assert first[0].id == "new" and first[0].payload == {"i": -1}
        assert len(layered) <= _sections(store, since)
        store.delete("c", ["new", "0"])
        found = [h.id for q in queries for h in store.search("c", q, k=10)[0]]
        assert "new" not in found and "0" not in found
        assert len(found) == 10 * len(queries)


def test_arguments_that_only_equal_a_kept_ways_are_judged_as_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept way is looked up by (collection, k, ef), where True equals 1 and 64.0
    equals 64: such arguments, and unhashable ones, get the checks' errors, as they do
    with no way kept."""
    data = mixture(N, DIM, seed=6)
    with open_store(tmp_path / "s") as store:
        _graphed(store, data, payloads=False)
        for _ in range(2):  # (the first keeps the ways, the second takes them)
            assert len(store.search("c", data[0], k=1, ef=64)[0]) == 1
            assert len(store.search("c", data[0], k=1)[0]) == 1
        assert ("c", 1, 64) in store._direct and store._direct["c", 1, 64][2] is not None
        layered = _counting_layers(monkeypatch)
        since = store._index_lock.generation
        assert store.search("c", data[0], k=1, ef=64)[0][0].id == "0"
        assert len(layered) <= _sections(store, since)  # (straight, but for a background
        layered.clear()  # section that sends one search through the layers)
        for k, ef in ((True, 64), (1.0, 64), (1, 64.0), (1, True), (True, None)):
            with pytest.raises(StoreError, match="must be a positive integer"):
                store.search("c", data[0], k=k, ef=ef)  # type: ignore[arg-type]
        for k, ef in (([1], 64), (1, [64])):
            with pytest.raises(StoreError, match="must be a positive integer"):
                store.search("c", data[0], k=k, ef=ef)  # type: ignore[arg-type]
        for name in (["c"], {"c": 1}, None):
            with pytest.raises(StoreError, match="collection must be a name"):
                store.search(name, data[0], k=1, ef=64)  # type: ignore[arg-type]
        assert not layered  # (refused before any search)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("segment_size", [0, 250])
def test_a_straight_search_answers_as_the_layers_do(
        tmp_path: Path, metric: str, segment_size: int, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """Removed points (a deeper search), identical vectors (shared nodes), ``k`` past
    the live points, several segments: the same hits either way."""
    data = mixture(N, DIM, seed=8) * (1.0 if metric == "cosine" else 3.0)
    data[N - 10:] = data[:10]  # (ten points share a node with another each)
    queries = np.concatenate([data[:10] + 0.01, mixture(40, DIM, seed=9) * (
        1.0 if metric == "cosine" else 3.0)])  # (near shared nodes; anywhere)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", metric=metric, index_params={
            "exact_threshold": 0, "segment_size": segment_size})
        store.upsert("c", [str(i) for i in range(N)], data,
                     [{"i": i} for i in range(N)], fingerprint="fp")
        store.delete("c", [str(i) for i in range(1, N, 5)])
        assert store.wait_merged(60)
        ks = (10, N)
        for k in ks:  # (fills the hit cache, keeps the ways)
            cold = [store.search("c", q, k=k)[0] for q in queries]
        warm = {k: [store.search("c", q, k=k)[0] for q in queries] for k in ks}
        row = store._search_row("c")
        live = store._indexes.live[row.cid]
        assert (store._search.direct_plan(row, live, 10, None) is not None) is (
            segment_size == 0)
        # (more than the live points: through the layers)
        assert store._search.direct_plan(row, live, N, None) is None
        assert warm[N] == cold and len(warm[N][0]) == N - N // 5
        store._direct.clear()
        monkeypatch.setattr(store, "_keep_direct", lambda *args: None)
        for k in ks:
            assert [store.search("c", q, k=k)[0] for q in queries] == warm[k]


def test_searches_beside_writes_that_grow_and_shrink_the_graph_stay_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain single searches on two threads, while a writer adds points that are merged
    into the graph (in place, and through a grown copy adopted under the lock: faiss's
    arrays move) and deletes others: no search fails or returns a point deleted before
    it began, none comes back short, and searches went straight between the writes."""
    monkeypatch.setattr(hnsw_graph, "COPY_MIN_NODES", 1_000)
    straight: list[int] = []
    direct = Searcher.search_direct

    def counted(self: Searcher, *args: object) -> object:
        hits = direct(self, *args)  # type: ignore[arg-type]
        if hits is not None:
            straight.append(1)
        return hits

    monkeypatch.setattr(Searcher, "search_direct", counted)
    data = mixture(4 * N, DIM, seed=7)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params={
            "exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(2 * N)], data[:2 * N], fingerprint="fp")
        assert store.wait_merged(60)
        gone: set[str] = set()
        errors: list[BaseException] = []
        done = threading.Event()

        def search(offset: int) -> None:
            try:
                i = offset
                while not done.is_set():
                    before = set(gone)
                    hits = store.search("c", data[i % N] + 0.01, k=10)[0]
                    assert len(hits) == 10
                    assert not before & {h.id for h in hits}
                    i += 2
            except BaseException as exc:  # (reported by the test)
                errors.append(exc)

        threads = [threading.Thread(target=search, args=(j,)) for j in range(2)]
        for thread in threads:
            thread.start()
        try:
            for lo in range(2 * N, 4 * N, 100):
                store.upsert("c", [str(i) for i in range(lo, lo + 100)],
                             data[lo:lo + 100], fingerprint="fp")
                assert store.wait_merged(60)
                doomed = [str(i) for i in range(lo - 2 * N, lo - 2 * N + 50)]
                store.delete("c", doomed)
                gone.update(doomed)
                time.sleep(0.02)  # (searches between the writes)
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert not errors, errors[:3]
        assert straight


def test_a_read_only_handle_and_an_int8_collection_search_through_the_layers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(N, DIM, seed=6)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params={
            "exact_threshold": 0})
        store.create_collection("q", DIM, fingerprint="fp", dtype="int8", index_params={
            "exact_threshold": 0})
        for name in ("c", "q"):
            store.upsert(name, [str(i) for i in range(N)], data, fingerprint="fp")
        assert store.wait_merged(60)
        store.checkpoint("c")
        for _ in range(3):
            assert store.search("q", data[1], k=10)[0][0].id == "1"
        row = store._search_row("q")
        assert store._search.direct_plan(row, store._indexes.live[row.cid], 10,
                                         None) is None  # (int8: rescored, no way)
    with open_store(tmp_path / "s", read_only=True) as reader:
        layered = _counting_layers(monkeypatch)
        for _ in range(3):
            assert reader.search("c", data[2], k=1)[0][0].id == "2"
        assert len(layered) == 3 and not reader._direct


def test_a_kept_way_is_left_when_its_loaded_index_is_not_the_one_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A belt beside the index lock's generation: a kept way stands only while the loaded
    index it was made for is the collection's loaded index, even if that index were ever
    replaced outside an exclusive section."""
    import copy

    data = mixture(N, DIM, seed=8)
    with open_store(tmp_path / "s") as store:
        _graphed(store, data, payloads=False)
        for _ in range(2):  # (the first keeps the way, the second takes it)
            assert store.search("c", data[3], k=5)[0][0].id == "3"
        cid = lookup(store.conn, "c").cid
        layered = _counting_layers(monkeypatch)
        since = store._index_lock.generation
        assert store.search("c", data[4], k=5)[0][0].id == "4"
        assert len(layered) <= _sections(store, since)  # (straight)
        replaced = store._indexes.live[cid] = copy.copy(store._indexes.live[cid])
        layered.clear()
        since = store._index_lock.generation
        assert store.search("c", data[5], k=5)[0][0].id == "5"
        assert 1 <= len(layered) <= 1 + _sections(store, since)  # (through the layers)
        kept = store._direct.get(("c", 5, None))  # (kept again, for it: unless a
        assert (kept is not None and kept[3] is replaced) or _sections(store, since)
        # background section has emptied the kept ways or loaded the index again since)
