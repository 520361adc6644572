"""A vector written again finds the node that holds it, by fingerprint (store/fingerprints).

Points with identical vectors share one graph node; these tests write copies in later
batches than the originals (the lookup, not the batch's own de-duplication, must find
them), in every stored type, after a reload from a checkpoint, after removals, and with
fingerprints forced to collide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.store import checkpoint_files, fingerprints, hnsw_graph
from embedops.store.fingerprints import Fingerprints
from embedops.store.hnsw_index import HnswIndex

from .storedata import mixture

DIM, N = 32, 3000


def _index(dtype: str) -> HnswIndex:
    return HnswIndex(DIM, "cosine", dtype, {}, clip=0.5 if dtype == "int8" else None)


def _add_in_batches(index: HnswIndex, keys: np.ndarray, vectors: np.ndarray) -> None:
    for start in range(0, len(keys), 1000):
        index.add(keys[start:start + 1000], vectors[start:start + 1000])


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_copies_in_later_writes_join_the_nodes_that_hold_them(dtype: str) -> None:
    vectors = mixture(N, DIM, seed=1)
    index = _index(dtype)
    _add_in_batches(index, np.arange(N), vectors)
    nodes = index.nodes
    _add_in_batches(index, np.arange(N, 2 * N), vectors)  # the same vectors, new points
    assert len(index) == 2 * N
    assert index.nodes == nodes  # no node was added for a vector some node holds
    keys, _ = index.search(vectors[:20], 2, ef=64)
    for i, row in enumerate(keys.tolist()):
        assert sorted(row) == [i, N + i]  # both points of the shared node come back


def _hashed_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the rows fingerprinted from now on (appended per call)."""
    counts: list[int] = []
    original = fingerprints.of

    def counting(rows: np.ndarray) -> np.ndarray:
        counts.append(len(rows))
        return original(rows)

    monkeypatch.setattr(hnsw_graph.fingerprints, "of", counting)
    return counts


@pytest.mark.parametrize("prints_file", ["kept", "corrupt", "missing"])
def test_a_reloaded_index_finds_its_nodes_with_or_without_its_prints_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prints_file: str) -> None:
    vectors = mixture(N, DIM, seed=2)
    index = _index("int8")
    _add_in_batches(index, np.arange(N), vectors)
    index.save(tmp_path, 1, seq=1)
    manifest = checkpoint_files.read_manifest(tmp_path, 1)
    assert manifest is not None and manifest["prints"]
    path = tmp_path / manifest["prints"]
    if prints_file == "corrupt":  # unsorted pairs: not taken, the prints are made again
        np.save(path, np.load(path)[::-1].copy())
    elif prints_file == "missing":
        path.unlink()
    loaded = HnswIndex.load(tmp_path, 1, DIM, "cosine", "int8", {}, 0.5)
    assert loaded is not None
    reloaded = loaded[0]
    hashed = _hashed_rows(monkeypatch)
    _add_in_batches(reloaded, np.arange(N, 2 * N), vectors)
    assert reloaded.nodes == index.nodes and len(reloaded) == 2 * N
    # the new rows are fingerprinted; the graph's own rows only when the file is unfit
    assert sum(hashed) == (N if prints_file == "kept" else 2 * N)


def test_a_checkpoint_right_after_a_load_keeps_the_prints(tmp_path: Path) -> None:
    index = _index("float32")
    _add_in_batches(index, np.arange(N), mixture(N, DIM, seed=6))
    index.save(tmp_path / "a", 1, seq=1)
    loaded = HnswIndex.load(tmp_path / "a", 1, DIM, "cosine", "float32", {}, None)
    assert loaded is not None
    loaded[0].save(tmp_path / "b", 1, seq=1)  # no write in between: prints still on file
    manifest = checkpoint_files.read_manifest(tmp_path / "b", 1)
    assert manifest is not None and manifest["prints"]
    again = np.load(tmp_path / "b" / manifest["prints"])
    assert again.shape == (N, 2) and again.dtype == np.uint64


def test_a_removed_node_is_not_joined_and_a_rewritten_vector_is() -> None:
    vectors = mixture(N, DIM, seed=3)
    index = _index("float32")
    _add_in_batches(index, np.arange(N), vectors)
    index.remove(np.array([0]))  # the node holding vector 0 is now a tombstone
    index.add(np.array([N]), vectors[:1])
    assert index.nodes == N  # a new node: the removed one holds no point any more
    index.add(np.array([N + 1]), vectors[:1])
    assert index.nodes == N  # the copy joins the new node
    keys, _ = index.search(vectors[:1], 2, ef=64)
    assert sorted(keys[0].tolist()) == [N, N + 1]


def test_colliding_fingerprints_never_share_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw_graph.fingerprints, "of",
                        lambda rows: np.zeros(len(rows), dtype=np.uint64))  # all collide
    vectors = mixture(200, DIM, seed=4)
    index = _index("float32")
    index.add(np.arange(100), vectors[:100])
    index.add(np.arange(100, 200), vectors[100:])  # different vectors, the same prints
    assert index.nodes == 200
    index.add(np.array([200]), vectors[199:200])  # a copy of the newest print's row
    assert index.nodes == 200 and len(index) == 201
    index.add(np.array([201]), vectors[150:151])  # a copy an older print hides: one more
    assert index.nodes == 201 and len(index) == 202  # node, not a wrong one
    for i, copy in ((199, 200), (150, 201)):
        keys, _ = index.search(vectors[i:i + 1], 2, ef=64)
        assert sorted(keys[0].tolist()) == [i, copy]


def test_fingerprints_of_equal_rows_are_equal_and_of_others_differ() -> None:
    rows = mixture(1000, DIM, seed=5)
    prints = fingerprints.of(rows)
    assert len(np.unique(prints)) == 1000
    assert np.array_equal(fingerprints.of(rows.copy()), prints)
    zero = np.zeros((1, DIM), dtype=np.float32)
    assert fingerprints.of(zero) == fingerprints.of(-zero)  # -0.0 and 0.0 are equal values
    one_bit = rows[:1].copy()
    one_bit.view(np.uint32)[0, 7] ^= 1
    assert fingerprints.of(one_bit) != prints[0]
    odd = mixture(100, DIM + 1, seed=7)  # an odd number of values: the last word filled
    assert len(np.unique(fingerprints.of(odd))) == 100
    last_changed = odd[:1].copy()
    last_changed[0, -1] += 1.0
    assert fingerprints.of(last_changed) != fingerprints.of(odd[:1])


def test_the_newest_position_of_a_fingerprint_wins_across_folds() -> None:
    table = Fingerprints(np.array([5, 9], dtype=np.uint64), np.array([0, 1]))
    table.add(np.array([9, 7], dtype=np.uint64), np.array([2, 3]))
    assert table.find(np.array([9, 7, 5, 4], dtype=np.uint64)).tolist() == [2, 3, 0, -1]
    many = np.arange(100, 100 + 2 * fingerprints.MIN_RECENT, dtype=np.uint64)
    table.add(many, np.arange(4, 4 + len(many)))  # past MIN_RECENT: folded into the sort
    table.add(np.array([5], dtype=np.uint64), np.array([10_000]))
    assert len(table._recent) < fingerprints.MIN_RECENT
    assert table.find(np.array([5, 9, 100], dtype=np.uint64)).tolist() == [10_000, 2, 4]
