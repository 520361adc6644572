"""A checkpoint's graph file mapped instead of read (``mapped_files``): the same answers
as a graph read whole, an owned copy before any insert (faiss aborts the process when
it must grow a mapped array), and a mapped file never cut short by the checkpoint that
replaces it (the mapping process would die of SIGBUS).

Its collections keep one graph (``segment_size`` 0): the tests reach into it. A
collection of segments runs the same code in each segment (``test_segments.py``)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.store import durable_files, mapped_files, open_store
from embedops.store.embedded import EmbeddedStore
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import HnswIndex

from .storedata import mixture

DIM = 32
HERE = Path(__file__).parent


def _live(store: object) -> HnswIndex:
    (live,) = store._indexes.live.values()  # type: ignore[attr-defined]
    return live.index


def _build(path: Path, data: np.ndarray, dtype: str = "float32",
           checkpoint_every: int = 50_000) -> None:
    with open_store(path) as store:
        store.create_collection("c", DIM, dtype=dtype, fingerprint="fp", index_params={
            "exact_threshold": 0, "segment_size": 0, "checkpoint_every": checkpoint_every})
        store.upsert("c", [str(i) for i in range(len(data))], data, None, fingerprint="fp")


@pytest.fixture
def map_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Map every graph file, however small."""
    monkeypatch.setattr(mapped_files, "MAP_MIN_BYTES", 1)


def _answers(path: Path, queries: np.ndarray) -> tuple[bool, list[list[tuple[str, float]]]]:
    with open_store(path, read_only=True) as store:
        hits = store.search("c", queries, k=5)
        one = store.search("c", queries[0], k=5)
        assert [h.id for h in one[0]] == [h.id for h in hits[0]]
        return store.stats("c")["index_mapped"], [
            [(h.id, round(h.score, 6)) for h in row] for row in hits]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_a_mapped_graph_answers_as_the_graph_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    data = mixture(2_000, DIM, seed=31)
    _build(tmp_path / "s", data, dtype)
    queries = mixture(30, DIM, seed=32)
    read_whole, answers = _answers(tmp_path / "s", queries)
    monkeypatch.setattr(mapped_files, "MAP_MIN_BYTES", 1)
    mapped, mapped_answers = _answers(tmp_path / "s", queries)
    assert (read_whole, mapped) == (False, True)
    assert mapped_answers == answers


def test_small_graph_files_are_read_whole(tmp_path: Path) -> None:
    _build(tmp_path / "s", mixture(500, DIM, seed=33))
    with open_store(tmp_path / "s") as store:
        store.search("c", np.ones(DIM, dtype=np.float32), k=1)
        assert store.stats("c")["index_mapped"] is False  # (under MAP_MIN_BYTES)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_first_write_reads_an_owned_copy_off_the_lock(
        tmp_path: Path, map_all: None, dtype: str) -> None:
    data = mixture(3_000, DIM, seed=34)
    _build(tmp_path / "s", data[:2_000], dtype)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        graph = _live(store).index
        assert graph.mapped and graph.exact_size
        store.upsert("c", [str(i) for i in range(2_000, 3_000)], data[2_000:], None,
                     fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert not graph.mapped and not graph.exact_size  # (the copy, taken)
        assert store.stats("c")["index_mapped"] is False
        for i in (0, 1_999, 2_000, 2_999):
            assert store.search("c", data[i], k=1)[0][0].id == str(i)
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []
    with open_store(tmp_path / "s") as store:  # (its checkpoint reads back whole)
        assert store.search("c", data[2_999], k=1)[0][0].id == "2999"
        assert store.stats("c")["index_points"] == 3_000


def test_an_insert_in_place_into_a_mapped_graph_owns_it_first(
        tmp_path: Path, map_all: None) -> None:
    """The merges that bypass the copy (a batch holding a copy of a held vector, a
    replay on a read-only handle) insert in place: into an owned copy, never through
    the mapping (which aborts the process)."""
    data = mixture(1_000, DIM, seed=35)
    _build(tmp_path / "s", data)
    with open_store(tmp_path / "s") as store:
        store.search("c", data[0], k=1)
        graph = _live(store).index
        assert graph.mapped
        store.upsert("c", ["copy-of-7", "new"], np.stack([data[7], -data[7]]), None,
                     fingerprint="fp")
        assert store.wait_merged(timeout=60)
        assert not graph.mapped and graph.size == 1_001  # (the copy shares node 7's)
        assert {h.id for h in store.search("c", data[7], k=2)[0]} == {"7", "copy-of-7"}
        assert store.search("c", -data[7], k=1)[0][0].id == "new"


def test_a_read_only_handle_catches_up_on_a_mapped_graph(tmp_path: Path, map_all: None
                                                         ) -> None:
    data = mixture(1_500, DIM, seed=36)
    _build(tmp_path / "s", data[:1_000])
    with open_store(tmp_path / "s", read_only=True) as reader:
        assert reader.search("c", data[0], k=1)[0][0].id == "0"
        assert reader.stats("c")["index_mapped"] is True
        with open_store(tmp_path / "s") as writer:  # commits after the reader's load
            writer.upsert("c", [str(i) for i in range(1_000, 1_500)], data[1_000:], None,
                          fingerprint="fp")
            for i in (1_000, 1_499, 3):
                assert reader.search("c", data[i], k=1)[0][0].id == str(i)
            assert reader.wait_merged(timeout=60)
            assert reader.stats("c")["index_mapped"] is False  # (merged into a copy)
            assert _live(reader).pending == 0 and len(_live(reader)) == 1_500
            for i in (1_000, 1_499, 3):
                assert reader.search("c", data[i], k=1)[0][0].id == str(i)


def test_a_read_only_catch_up_waits_for_no_copy_of_the_graph(
        tmp_path: Path, map_all: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The changes a reader replays into a mapped graph wait in its pending segment,
    and its merger copies the graph off the index lock: neither the search that
    catches up nor the ones after it wait for the copy (held here until released)."""
    copying, release = threading.Event(), threading.Event()
    real = HnswGraph.owned_copy

    def slow_copy(self: HnswGraph) -> faiss.IndexHNSW:
        if self is _live(reader).index:  # (the writer's copy goes ahead)
            copying.set()
            release.wait(10)
        return real(self)

    monkeypatch.setattr(HnswGraph, "owned_copy", slow_copy)
    data = mixture(1_200, DIM, seed=38)
    _build(tmp_path / "s", data[:1_000])
    with open_store(tmp_path / "s", read_only=True) as reader:
        assert reader.search("c", data[0], k=1)[0][0].id == "0"
        with open_store(tmp_path / "s") as writer:
            writer.upsert("c", [str(i) for i in range(1_000, 1_200)], data[1_000:], None,
                          fingerprint="fp")
            try:
                started = time.monotonic()
                assert reader.search("c", data[1_100], k=1)[0][0].id == "1100"
                assert copying.wait(10)  # (the merger is in the copy now)
                for i in (5, 1_000, 1_199):
                    assert reader.search("c", data[i], k=1)[0][0].id == str(i)
                waited = time.monotonic() - started
            finally:
                release.set()
            assert waited < 5, f"searches waited {waited:.1f} s for the copy"
            assert reader.wait_merged(timeout=60)
            assert not _live(reader).mapped and len(_live(reader)) == 1_200


def test_a_read_only_handle_that_only_searches_keeps_its_mapping_and_pending_points(
        tmp_path: Path, map_all: None) -> None:
    """A checkpoint saved while a writer streamed holds points pending a merge. A
    read-only handle that loads it and sees no writes scores them exactly, as before:
    it starts no merger, and its graph stays mapped (merging would read a private copy
    of the graph into every reader process)."""
    data = mixture(3_000, DIM, seed=39)
    path, copy = tmp_path / "s", tmp_path / "copy"
    with open_store(path) as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params={
            "exact_threshold": 0, "segment_size": 0, "checkpoint_every": 300})
        store.upsert("c", [str(i) for i in range(3_000)], data, None, fingerprint="fp")
        assert store.wait_checkpointed(60)
        shutil.copytree(path, copy)  # (with the checkpoint holding pending points)
    (copy / "LOCK").unlink(missing_ok=True)
    with open_store(copy, read_only=True) as reader:
        assert reader.search("c", data[7], k=1)[0][0].id == "7"
        index = _live(reader)
        saved = index.pending
        assert saved > 0 and index.mapped
        assert reader.wait_merged(timeout=5)  # (nothing for this handle to merge)
        time.sleep(0.3)
        assert reader._merger is None  # type: ignore[attr-defined]
        assert index.mapped and index.pending == saved
        assert reader.search("c", data[2_999], k=1)[0][0].id == "2999"


def test_a_reopened_writer_keeps_the_tail_pending_and_merges_it_off_the_lock(
        tmp_path: Path, map_all: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(2_500, DIM, seed=37)
    _build(tmp_path / "s", data[:2_000], checkpoint_every=1_000_000)
    # a tail after the checkpoint: committed by a process that ends without saving its
    # index (no close)
    script = (
        "import os, sys, numpy as np\n"
        "from embedops.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "data = np.load(sys.argv[2])\n"
        "store.upsert('c', [str(i) for i in range(2_000, 2_500)], data, None,"
        " fingerprint='fp')\n"
        "os._exit(0)\n")
    np.save(tmp_path / "tail.npy", data[2_000:])
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "s"),
                    str(tmp_path / "tail.npy")], check=True, timeout=120)
    monkeypatch.setattr(EmbeddedStore, "_start_merging", lambda self: None)
    with open_store(tmp_path / "s") as store:
        assert store.search("c", data[2_100], k=1)[0][0].id == "2100"  # (from pending)
        index = _live(store)
        assert index.pending == 500 and index.mapped  # (the replay went to the segment)
        monkeypatch.undo()
        store._start_merging()  # type: ignore[attr-defined]
        assert store.wait_merged(timeout=60)
        assert not index.mapped and len(index) == 2_500
        assert store.verify_index("c")["missing"] == []


def test_a_mapped_file_removed_by_a_newer_checkpoint_is_not_cut_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader process maps the graph file; the writer checkpoints past it and removes
    it. Cut from the end as unmapped files are, the reader's next search would die of
    SIGBUS; the writer unlinks it whole instead, and the reader answers as before."""
    monkeypatch.setattr(durable_files, "TRUNCATE_BYTES", 4096)  # (cut in small slices)
    _build(tmp_path / "s", mixture(2_000, DIM, seed=38))
    (old,) = (tmp_path / "s" / "index").glob("*.faiss")
    assert old.stat().st_size > 4 * 4096
    reader = subprocess.Popen([sys.executable, str(HERE / "mapped_reader.py"),
                               str(tmp_path / "s"), str(DIM)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(reader.stdout.readline())  # type: ignore[union-attr]
        assert first["mapped"] is True
        with open_store(tmp_path / "s") as store:  # (the collection itself unchanged:
            store.rebuild_index("c")  # the reader searches through its mapping as it is)
        assert not old.exists()  # (removed: a newer checkpoint replaced it)
        reader.stdin.write("again\n")  # type: ignore[union-attr]
        reader.stdin.flush()  # type: ignore[union-attr]
        again = reader.stdout.readline()  # type: ignore[union-attr]
        reader.stdin.close()  # type: ignore[union-attr]
        assert reader.wait(timeout=60) == 0, "the reader died (SIGBUS: file cut short)"
        assert json.loads(again) == first["ids"]
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


def test_removal_cuts_a_file_only_when_nothing_maps_it(tmp_path: Path) -> None:
    path = tmp_path / "graph.faiss"
    path.write_bytes(bytes(10 * 4096))
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_SH)  # (as a mapping process holds it)
        assert durable_files.remove_gradually(path, step=4096, sync=lambda fd: None) == 0
        assert not path.exists() and os.fstat(holder).st_size == 10 * 4096
    finally:
        os.close(holder)
    path.write_bytes(bytes(10 * 4096))
    assert durable_files.remove_gradually(path, step=4096, sync=lambda fd: None) == 9
    assert not path.exists()


def test_a_file_being_removed_is_not_mapped(tmp_path: Path, map_all: None) -> None:
    path = tmp_path / "graph.faiss"
    path.write_bytes(bytes(4096))
    remover = os.open(path, os.O_WRONLY)
    try:
        fcntl.flock(remover, fcntl.LOCK_EX)
        with pytest.raises(mapped_files.BeingRemoved):
            mapped_files.open_for_mapping(path)
    finally:
        os.close(remover)
    mapping = mapped_files.open_for_mapping(path)
    assert mapping is not None and mapping.size == 4096
    assert mapped_files.mapped_elsewhere(os.open(path, os.O_RDONLY))  # (our shared lock)
    mapping.close()


def test_a_checkpoint_replaced_while_it_is_read_is_followed_to_the_new_one(
        tmp_path: Path, map_all: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixture(1_500, DIM, seed=39)
    _build(tmp_path / "s", data[:1_000])
    real = mapped_files.open_for_mapping
    replaced: list[Path] = []

    def replaced_meanwhile(path: Path) -> mapped_files.MappedFile | None:
        if not replaced:  # the writer checkpoints past this file just as it is opened
            replaced.append(path)
            with open_store(tmp_path / "s") as store:
                store.upsert("c", [str(i) for i in range(1_000, 1_500)], data[1_000:],
                             None, fingerprint="fp")
            raise mapped_files.BeingRemoved(str(path))
        return real(path)

    monkeypatch.setattr("embedops.store.hnsw_graph.open_for_mapping", replaced_meanwhile)
    loaded = HnswIndex.load(tmp_path / "s" / "index", 1, DIM, "cosine", "float32", {}, None)
    assert loaded is not None and replaced
    index, seq = loaded
    assert seq == 2 and index.mapped and len(index) == 1_500  # (the newer checkpoint)
    assert not replaced[0].exists()
