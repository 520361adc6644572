"""The first merge into a graph read from a checkpoint is made on a copy of the graph,
off the index lock, and swapped in (its first insert in place copies all of faiss's
arrays with the lock held: 0.43 s at 1M int8 nodes). The points must end up exactly as
an insert in place leaves them, and a change meanwhile must leave them pending.

Its collections keep one graph (``segment_size`` 0): the tests reach into it. A
collection of segments runs the same code in each segment (``test_segments.py``)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import HnswIndex
from embedops.store.key_positions import KeyPositions

from .storedata import mixture

DIM = 32


def _live(store: object) -> HnswIndex:
    (live,) = store._indexes.live.values()  # type: ignore[attr-defined]
    return live.index


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_the_first_write_after_a_reopen_goes_in_through_a_copy(tmp_path: Path,
                                                              dtype: str) -> None:
    data = mixture(3_000, DIM, seed=21)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, dtype=dtype, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(2_000)], data[:2_000], None,
                     fingerprint="fp")
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)  # (loads the graph from the checkpoint)
        graph = _live(store).index
        assert graph.exact_size
        before = graph.graph
        store.upsert("c", [str(i) for i in range(2_000, 3_000)], data[2_000:], None,
                     fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert graph.graph is not before and not graph.exact_size  # (the copy, taken)
        assert (len(graph), store.stats("c")["index_pending"]) == (3_000, 0)
        for i in (0, 1_999, 2_000, 2_500, 2_999):
            assert store.search("c", data[i], k=1)[0][0].id == str(i)
        assert store.verify_index("c")["missing"] == [] == store.verify_index("c")["ghosts"]
    with open_store(tmp_path / "s") as store:  # (and its checkpoint reads back whole)
        assert store.search("c", data[2_999], k=1)[0][0].id == "2999"
        assert store.stats("c")["index_points"] == 3_000


def test_a_first_write_holding_copies_of_held_vectors_merges_in_place(
        tmp_path: Path) -> None:
    data = mixture(1_000, DIM, seed=22)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(1_000)], data, None, fingerprint="fp")
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        graph = _live(store).index
        before = graph.graph
        store.upsert("c", ["copy-of-7", "new"], np.stack([data[7], -data[7]]), None,
                     fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert graph.graph is before  # (in place: a copy joins its node)
        assert graph.size == 1_001  # one node more, for "new"; the copy shares node 7's
        ids = {h.id for h in store.search("c", data[7], k=2)[0]}
        assert ids == {"7", "copy-of-7"}


def test_points_changed_while_the_copy_was_made_stay_pending() -> None:
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((600, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(500), rows[:500])
    index.index.exact_size = True  # (as a graph read from a file is)
    index.add(np.arange(500, 600), rows[500:], defer=True)
    job = index.off_lock_insert(1_000)
    assert job is not None and len(job.keys) == 100
    index.make_copy(job)
    index.add(np.array([550]), -rows[550:551], defer=True)  # rewritten meanwhile
    assert index.finish_off_lock_insert(job) is None
    assert (index.index.size, index.pending) == (500, 100)
    job = index.off_lock_insert(1_000)  # tried again: now it goes through
    assert job is not None
    index.make_copy(job)
    assert index.finish_off_lock_insert(job) is not None  # (the graph it replaced)
    assert (index.index.size, index.pending, index.index.exact_size) == (600, 0, False)
    keys, _ = index.search(-rows[550:551], 1)
    assert keys[0, 0] == 550
    assert index.off_lock_insert(1_000) is None  # (only the first merge after a load)


def test_without_memory_for_a_copy_the_first_write_merges_in_place(tmp_path: Path) -> None:
    data = mixture(1_000, DIM, seed=23)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(900)], data[:900], None, fingerprint="fp")
        resident = store.index_memory_bytes()
    # room for the new points, not for a second copy of the graph
    with open_store(tmp_path / "s", memory_budget_bytes=int(1.5 * resident)) as store:
        store.search("c", data[0], k=1)
        graph = _live(store).index
        before = graph.graph
        store.upsert("c", [str(i) for i in range(900, 1_000)], data[900:], None,
                     fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert graph.graph is before and len(graph) == 1_000
        assert store.search("c", data[950], k=1)[0][0].id == "950"


@pytest.mark.parametrize("replace", [False, True])
def test_the_first_write_after_a_reopen_leaves_the_key_map_to_the_merger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replace: bool) -> None:
    """Building the key -> position map took 0.17-0.24 s at 1M nodes (a dictionary then),
    with the index lock held, in the first write after an open. The write now scans the
    labels, and the merger builds the map off the lock."""
    data = mixture(2_100, DIM, seed=24)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(2_000)], data[:2_000], None,
                     fingerprint="fp")
    inline: list[str] = []
    real = HnswGraph._key_map

    def key_map(self: HnswGraph) -> KeyPositions:
        if self._positions is None:
            inline.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(HnswGraph, "_key_map", key_map)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)  # (loads the graph from the checkpoint)
        graph = _live(store).index
        assert graph._positions is None
        ids = [str(i) for i in (range(0, 100) if replace else range(2_000, 2_100))]
        store.upsert("c", ids, data[2_000:], None, fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert inline == []
        held = graph.labels_copy()
        assert graph.key_map_built
        assert np.array_equal(graph.positions_of(held[held >= 0]), np.flatnonzero(held >= 0))
        assert len(graph) == (2_000 if replace else 2_100)
        assert inline == []
        for i in (0, 57, 99):
            assert store.search("c", data[2_000 + i], k=1)[0][0].id == ids[i]
        assert store.search("c", data[1_999], k=1)[0][0].id == "1999"


def test_a_collection_with_shared_nodes_loads_without_building_its_key_map(
        tmp_path: Path) -> None:
    """The load checks that its shared nodes are in the graph by scanning the labels."""
    data = mixture(1_000, DIM, seed=25)
    copies = np.repeat(data[:3], 4, axis=0)  # three vectors held by four points each
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "segment_size": 0})
        store.upsert("c", [str(i) for i in range(1_000)], data, None, fingerprint="fp")
        store.upsert("c", [f"copy{i}" for i in range(12)], copies, None, fingerprint="fp")
    with open_store(tmp_path / "s") as store:
        hits = store.search("c", data[1], k=5)[0]
        assert {h.id for h in hits} == {"1", "copy4", "copy5", "copy6", "copy7"}
        index = _live(store)
        assert len(index._groups) == 3 and index.index._positions is None
