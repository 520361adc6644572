"""A graph about to outgrow faiss's arrays grows on a copy, off the index lock.

faiss keeps a graph's vectors and links in vectors that reallocate, copying everything,
when an insert outgrows their capacity: with the index lock held, every search waits for
that copy (0.43 s for the first insert into a 1M int8 graph read from a file, which
holds its arrays at their exact size). The store makes such inserts on a copy of the
graph (``HnswGraph.copy_due``, ``grown_copy``) with no index lock held at all, so
neither searches nor deferred writes wait for it.

Its collections keep one graph (``segment_size`` 0): the tests reach into it. A
collection of segments runs the same code in each segment (``test_segments.py``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.store import hnsw_graph, open_store
from embedops.store.hnsw_graph import HnswGraph

from .storedata import mixture

DIM = 16


def _arrays(graph: faiss.IndexHNSW) -> tuple[int, int]:
    """Where the graph's vectors and links are in memory now."""
    codes = faiss.downcast_index(graph.storage).codes.data()
    links = graph.hnsw.neighbors.data()
    return int(codes or 0), int(links or 0)  # (an empty graph's: None)


def _checkpointed(path: Path, data: np.ndarray) -> None:
    """A store of ``data`` (ids "0", "1", ...), closed: its graph checkpointed."""
    with open_store(path) as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(len(data))], data, None, fingerprint="fp")


def _held_copies(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Copies of a graph wait (up to 10 s) until the second event is set, once they have
    set the first."""
    copying, release = threading.Event(), threading.Event()
    real = HnswGraph.grown_copy

    def slow_copy(self: HnswGraph, rows: np.ndarray) -> faiss.IndexHNSW:
        copying.set()
        release.wait(10)
        return real(self, rows)

    monkeypatch.setattr(HnswGraph, "grown_copy", slow_copy)
    return copying, release


def test_a_growing_graph_never_reallocates_in_place_past_the_threshold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw_graph, "COPY_MIN_NODES", 1_000)
    moved_in_place: list[int] = []
    copies: list[int] = []
    real_add, real_adopt = HnswGraph.add, HnswGraph.adopt

    def add(self: HnswGraph, keys: np.ndarray, rows: np.ndarray) -> None:
        before, size = _arrays(self.graph), self.size
        real_add(self, keys, rows)
        if size >= 1_000 and _arrays(self.graph) != before:
            moved_in_place.append(size)

    def adopt(self: HnswGraph, copy: faiss.IndexHNSW, keys: np.ndarray,
              rows: np.ndarray) -> faiss.IndexHNSW:
        copies.append(self.size)
        return real_adopt(self, copy, keys, rows)

    monkeypatch.setattr(HnswGraph, "add", add)
    monkeypatch.setattr(HnswGraph, "adopt", adopt)
    data = mixture(12_000, DIM, seed=41)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        for lo in range(0, 12_000, 500):
            store.upsert("c", [str(i) for i in range(lo, lo + 500)], data[lo:lo + 500],
                         None, fingerprint="fp")
            assert store.wait_merged(timeout=60)
        assert moved_in_place == []
        assert len(copies) >= 3  # (1,000 -> 12,000 nodes: the arrays grew several times)
        for i in (0, 999, 5_000, 11_999):
            assert store.search("c", data[i], k=1)[0][0].id == str(i)
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []


def test_the_room_counted_on_is_never_more_than_the_arrays_hold() -> None:
    """After a copy the room is GROWTH times the copied size; an insert in place within
    it must not move the arrays."""
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((6_000, DIM)).astype(np.float32)
    graph = HnswGraph(DIM, "cosine", "float32", 16, 64)
    graph.add(np.arange(2_000), rows[:2_000])
    copy = graph.grown_copy(rows[2_000:2_010])
    graph.adopt(copy, np.arange(2_000, 2_010), rows[2_000:2_010])
    nodes, _ = graph._room
    assert nodes >= int(hnsw_graph.GROWTH * 2_000)
    before = _arrays(graph.graph)
    graph.add(np.arange(2_010, nodes), rows[2_010:nodes])
    assert _arrays(graph.graph)[0] == before[0]  # (the vectors did not move)
    assert graph.copy_due(1) is (graph.size >= hnsw_graph.COPY_MIN_NODES)


def test_neither_searches_nor_writes_wait_for_a_copy(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(3_000, DIM, seed=42)
    _checkpointed(tmp_path / "s", data[:2_000])
    copying, release = _held_copies(monkeypatch)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)  # (the graph loads: its first merge is a copy)
        store.upsert("c", [str(i) for i in range(2_000, 2_500)], data[2_000:2_500], None,
                     fingerprint="fp")
        assert copying.wait(10)
        try:
            began = time.monotonic()
            store.upsert("c", [str(i) for i in range(2_500, 3_000)], data[2_500:], None,
                         fingerprint="fp")
            assert store.search("c", data[2_700], k=1)[0][0].id == "2700"  # (pending)
            assert store.search("c", data[10], k=1)[0][0].id == "10"
            took = time.monotonic() - began
        finally:
            release.set()
        assert took < 1.0  # (the copy is held for up to 10 s: a wait would show)
        assert store.wait_merged(timeout=60)
        for i in (0, 2_100, 2_999):
            assert store.search("c", data[i], k=1)[0][0].id == str(i)
        assert store.verify_index("c")["missing"] == []



def test_a_writer_past_the_pending_limit_does_not_wait_for_a_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_PENDING`` a writer merges its excess itself; while the merger makes a
    copy, an insert in place would wait for it with the index lock held (and every
    search behind it): the writer skips its merge instead, and the segment runs over."""
    from embedops.store import index_manager

    monkeypatch.setattr(index_manager, "MAX_PENDING", 100)
    data = mixture(3_000, DIM, seed=43)
    _checkpointed(tmp_path / "s", data[:2_000])
    copying, release = _held_copies(monkeypatch)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        store.upsert("c", [str(i) for i in range(2_000, 2_050)], data[2_000:2_050], None,
                     fingerprint="fp")
        assert copying.wait(10)
        try:
            began = time.monotonic()
            for lo in range(2_050, 3_000, 190):  # (each past the limit of 100)
                store.upsert("c", [str(i) for i in range(lo, lo + 190)],
                             data[lo:lo + 190], None, fingerprint="fp")
            assert store.search("c", data[2_900], k=1)[0][0].id == "2900"
            took = time.monotonic() - began
            assert store.stats("c")["index_pending"] > 100  # (ran over meanwhile)
        finally:
            release.set()
        assert took < 1.0
        assert store.wait_merged(timeout=60)
        assert store.verify_index("c")["missing"] == []


def test_a_writer_past_the_pending_limit_leaves_a_due_copy_to_the_merger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first merge after a load goes through a copy (seconds at 1M nodes): a writer
    past ``MAX_PENDING`` must not make it on its own thread, holding up every other
    write, but leave it to the merger (kept from running here)."""
    from embedops.store import index_manager
    from embedops.store.embedded import EmbeddedStore

    monkeypatch.setattr(index_manager, "MAX_PENDING", 100)
    data = mixture(2_600, DIM, seed=44)
    _checkpointed(tmp_path / "s", data[:2_000])
    copied: list[str] = []
    real = HnswGraph.grown_copy

    def recorded(self: HnswGraph, rows: np.ndarray) -> faiss.IndexHNSW:
        copied.append(threading.current_thread().name)
        return real(self, rows)

    monkeypatch.setattr(HnswGraph, "grown_copy", recorded)
    monkeypatch.setattr(EmbeddedStore, "_merge_loop", lambda self: None)  # (no merger)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)  # (loaded: its first merge is a copy)
        for lo in range(2_000, 2_600, 200):  # (each past the limit of 100)
            store.upsert("c", [str(i) for i in range(lo, lo + 200)], data[lo:lo + 200],
                         None, fingerprint="fp")
        assert copied == [] and store.stats("c")["index_pending"] == 600
        assert store.search("c", data[2_599], k=1)[0][0].id == "2599"


def test_a_due_copy_waits_for_a_pause_in_the_writes_below_max_pending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of writes with fewer than ``MAX_PENDING`` points pending is not slowed by
    the merger's copy of the graph (the copy and its inserts took most of a core beside
    a burst of 10,000 upserts); past ``MAX_PENDING`` the merger makes it at once."""
    from embedops.store import index_manager

    data = mixture(2_100, DIM, seed=46)
    _checkpointed(tmp_path / "s", data[:2_000])
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        graph = next(iter(store._indexes.live.values())).index.index  # type: ignore[attr-defined]
        assert graph.exact_size
        store._writing += 1  # (a write in flight throughout: writes back to back)
        try:
            store.upsert("c", [f"w{i}" for i in range(100)], data[2_000:], None,
                         fingerprint="fp")
            time.sleep(0.5)
            assert graph.exact_size  # (the copy waits: 100 pending, MAX_PENDING 20,000)
            monkeypatch.setattr(index_manager, "MAX_PENDING", 50)
            deadline = time.monotonic() + 30
            while graph.exact_size and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not graph.exact_size  # (past MAX_PENDING: made during the burst)
        finally:
            store._writing -= 1
        assert store.wait_merged(timeout=60)
        assert store.search("c", data[2_050], k=1)[0][0].id == "w50"


def test_the_merger_makes_a_due_copy_while_writes_come_back_to_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedops.store import index_manager

    monkeypatch.setattr(index_manager, "MAX_PENDING", 100)
    data = mixture(2_600, DIM, seed=45)
    _checkpointed(tmp_path / "s", data[:2_000])
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        graph = next(iter(store._indexes.live.values())).index.index  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        lo = 2_000
        while graph.exact_size and time.monotonic() < deadline:  # (writes back to back)
            store.upsert("c", [f"w{lo % 600}"], data[2_000 + lo % 600][None], None,
                         fingerprint="fp")
            lo += 1
        assert not graph.exact_size  # (the merger's copy went in meanwhile)
        assert store.wait_merged(timeout=60)
