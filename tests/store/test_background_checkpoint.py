"""Checkpoints written in the background: the image they save, writes and searches that
go on while the graph file is written, and a kill in the middle of one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.store import checkpoint_files, compaction, embedded, index_manager, open_store
from embedops.store.checkpoint_files import read_manifest
from embedops.store.embedded import EmbeddedStore
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.hnsw_index import HnswIndex

from .storedata import mixture

DIM = 24
PARAMS = {"exact_threshold": 0, "checkpoint_every": 300}


def _within(seconds: float, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a daemon thread; fail (not hang) when it takes longer."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # (re-raised below, in the test's thread)
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if errors:
        raise errors[0]
    return out[0]


def test_the_image_is_the_index_at_freeze_whatever_changes_while_it_is_written(
        tmp_path: Path) -> None:
    vectors = mixture(3000, DIM, seed=1)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(2000), vectors[:2000])
    index.remove(np.arange(0, 2000, 7))
    index.add(np.arange(2000, 2100), vectors[2000:2100], defer=True)  # pending at freeze
    keys_then = set(index.keys().tolist())
    answers_then = index.search(vectors[:50], 10)

    image = index.freeze(seq=9)
    assert index.frozen
    # While the graph is written: removals, replacements and inserts go on; inserts and
    # merges keep off the graph (its node count stays), and none of it reaches the image.
    nodes = index.index.size
    index.remove(np.arange(1, 500, 2))
    index.add(np.arange(2100, 2600), vectors[2100:2600])  # (not deferred: pending anyway)
    index.add(np.arange(10, 20), vectors[2600:2610])
    assert index.merge(10_000) == 0 and index.index.size == nodes
    checkpoint_files.write(tmp_path, 1, image)
    index.thaw()
    assert not index.frozen and index.merge(10_000) > 0

    loaded = HnswIndex.load(tmp_path, 1, DIM, "cosine", "float32", {}, None)
    assert loaded is not None and loaded[1] == 9
    again = loaded[0]
    assert again.pending == 100 and again.index._positions is None  # (the pending points
    # restored without building the graph's key map, which a cold open skips)
    assert set(again.keys().tolist()) == keys_then
    found = again.search(vectors[:50], 10)
    assert np.array_equal(found[0], answers_then[0])
    manifest = read_manifest(tmp_path, 1)
    assert manifest is not None and manifest["pending"] and manifest["size"] == len(keys_then)


def test_a_pending_file_that_does_not_fit_is_not_loaded(tmp_path: Path) -> None:
    vectors = mixture(1200, DIM, seed=2)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(1000), vectors[:1000])
    index.add(np.arange(1000, 1200), vectors[1000:], defer=True)
    checkpoint_files.write(tmp_path, 1, index.image(seq=3))
    manifest = read_manifest(tmp_path, 1)
    assert manifest is not None
    pending = tmp_path / manifest["pending"]
    keys, rows = checkpoint_files.read_pending(pending, DIM) or (None, None)
    assert keys is not None and rows is not None
    assert keys.tolist() == list(range(1000, 1200)) and np.array_equal(rows, vectors[1000:])
    np.save(pending.with_suffix(""), checkpoint_files.pending_records(keys, rows[:, :-1]))
    assert HnswIndex.load(tmp_path, 1, DIM, "cosine", "float32", {}, None) is None


def test_writes_and_searches_go_on_while_a_checkpoint_writes_the_graph(
        tmp_path: Path, held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    entered, release = held_graph_write
    vectors = mixture(4000, DIM, seed=3)
    ids = [str(i) for i in range(4000)]
    store = open_store(tmp_path / "s")
    try:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "checkpoint_every": 1000})
        release.set()  # (the load's own checkpoint goes through)
        store.upsert("c", ids[:3000], vectors[:3000], None, fingerprint="fp")
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        entered.clear()
        release.clear()
        # 1,000 deletes reach the interval: a checkpoint starts, its graph write is held
        _within(20, lambda: store.delete("c", ids=ids[:1000]))
        covered = store.stats("c")["seq"]
        assert entered.wait(30), "no background checkpoint started"
        # Meanwhile deletes, inserts, replacements and searches all complete.
        _within(20, lambda: store.delete("c", ids=ids[1000:1100]))
        _within(20, lambda: store.upsert("c", ids[3000:3500], vectors[3000:3500], None,
                                         fingerprint="fp"))
        _within(20, lambda: store.upsert("c", ids[1100:1110], vectors[3500:3510], None,
                                         fingerprint="fp"))
        hits = _within(20, lambda: store.search("c", vectors[3000:3510], k=1))
        assert [h[0].id for h in hits] == ids[3000:3500] + ids[1100:1110]
        gone = _within(20, lambda: store.search("c", vectors[:1100], k=1))
        assert not {h[0].id for h in gone} & set(ids[:1100])
        assert store.stats("c")["index_pending"] >= 500  # (no merge into a frozen graph)
        release.set()
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        manifest = read_manifest(tmp_path / "s" / "index", 1)
        conn = sqlite3.connect(tmp_path / "s" / "store.sqlite")
        (pruned,) = conn.execute("SELECT pruned_seq FROM collections").fetchone()
        left = [s for (s,) in conn.execute("SELECT DISTINCT seq FROM tombstones")]
        conn.close()
        # the checkpoint covers the delete that made it due and nothing later; the
        # tombstones it covers are pruned, the later delete's stay for a replay
        assert manifest is not None and manifest["seq"] == pruned == covered
        assert left == [covered + 1]
        report = store.verify_index("c")
        assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    finally:
        release.set()
        store.close()
    with open_store(tmp_path / "s", read_only=True) as reader:
        report = reader.verify_index("c")
        assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
        assert report["points"] == 3000 - 1100 + 500


def test_a_checkpoint_due_in_a_burst_of_writes_waits_for_the_burst_to_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint that a write in the middle of back-to-back deletes makes due starts
    once they pause, not beside them (its graph write's fsyncs would sit beside their
    commits' fsyncs), though nothing else woke the background thread before. The pause
    is widened to 0.2 s here, so that a scheduling hiccup between two writes of the
    burst does not count as one."""
    monkeypatch.setattr(embedded, "WRITE_YIELD_WINDOW_S", 0.2)
    monkeypatch.setattr(compaction, "COMPACT_SHARE", float("inf"))
    spans: list[tuple[float, float]] = []
    real = HnswGraph.write_graph

    def slow(self: HnswGraph, write: Callable[[bytes], int]) -> None:
        started = time.monotonic()
        time.sleep(0.3)
        real(self, write)
        spans.append((started, time.monotonic()))

    monkeypatch.setattr(HnswGraph, "write_graph", slow)
    vectors = mixture(2000, DIM, seed=5)
    ids = [str(i) for i in range(2000)]
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0, "checkpoint_every": 400})
        store.upsert("c", ids, vectors, None, fingerprint="fp")
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        spans.clear()
        writes: list[tuple[float, float]] = []
        for at in range(0, 600, 3):  # 600 deletes: due at 400, overdue only at 800
            started = time.monotonic()
            store.delete("c", ids=ids[at:at + 3])
            writes.append((started, time.monotonic()))
        assert store.wait_checkpointed(60)
    assert spans, "no checkpoint was written after the burst"
    beside = [w for w in writes if any(w[0] < end and start < w[1] for start, end in spans)]
    assert len(beside) <= 5, f"{len(beside)} of {len(writes)} writes ran beside a checkpoint"


def _frozen_by_a_checkpoint(store: EmbeddedStore, ids: list[str], vectors: np.ndarray,
                            entered: threading.Event, release: threading.Event) -> None:
    """Collection ``c`` with the first 2,000 points merged and checkpointed, then 300 of
    them deleted: a checkpoint comes due and holds the graph frozen (``held_graph_write``)
    until ``release``; nothing merges meanwhile."""
    store.create_collection("c", DIM, fingerprint="fp", index_params=PARAMS)
    release.set()
    store.upsert("c", ids[:2000], vectors[:2000], None, fingerprint="fp")
    assert store.wait_checkpointed(60) and store.wait_merged(60)
    entered.clear()
    release.clear()
    store.delete("c", ids=ids[:300])
    assert entered.wait(30)


def test_a_writer_waits_once_the_frozen_graphs_pending_segment_is_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    """A write that leaves more than ``PENDING_MAX`` points pending (a checkpoint holds
    the graph, so nothing merges) returns only once the merger has merged them; while it
    waits, searches and other writes go on (it waits without the handle's lock, which
    the checkpoint takes to finish)."""
    entered, release = held_graph_write
    monkeypatch.setattr(embedded, "PENDING_MAX", 200)
    vectors = mixture(3000, DIM, seed=4)
    ids = [str(i) for i in range(3000)]
    with open_store(tmp_path / "s") as store:
        _frozen_by_a_checkpoint(store, ids, vectors, entered, release)
        store.upsert("c", ids[2000:2150], vectors[2000:2150], None, fingerprint="fp")  # 150
        done = threading.Event()
        thread = threading.Thread(target=lambda: (store.upsert(  # 150 more: past 200
            "c", ids[2150:2300], vectors[2150:2300], None, fingerprint="fp"), done.set()),
            daemon=True)
        thread.start()
        assert not done.wait(0.5), "a write went on past the pending segment's limit"
        assert [h[0].id for h in store.search("c", vectors[2150:2160], k=1)] == \
            ids[2150:2160]  # (searchable at once, in the pending segment)
        _within(20, lambda: store.delete("c", ids=ids[300:310]))  # (it holds no lock)
        assert not done.is_set()
        release.set()
        assert done.wait(30)
        live = store._indexes.live[1]
        assert live.index.pending <= 200
        assert [h[0].id for h in store.search("c", vectors[2000:2300], k=1)] == ids[2000:2300]


def test_a_writer_into_a_backlog_it_did_not_make_waits_for_its_own_points_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    """A segment already past ``PENDING_MAX`` before a write (here: writes made while
    the limit was out of reach; in use, the replay after a crash) is not the write's to
    drain: it waits until the merger has merged as many points as it added."""
    entered, release = held_graph_write
    monkeypatch.setattr(index_manager, "MERGE_MAX", 1)  # (a slow merger: a point a slice)
    vectors = mixture(3000, DIM, seed=7)
    ids = [str(i) for i in range(3000)]
    with open_store(tmp_path / "s") as store:
        _frozen_by_a_checkpoint(store, ids, vectors, entered, release)
        monkeypatch.setattr(embedded, "PENDING_MAX", 10**9)
        store.upsert("c", ids[2000:2600], vectors[2000:2600], None, fingerprint="fp")
        monkeypatch.setattr(embedded, "PENDING_MAX", 100)
        done = threading.Event()
        thread = threading.Thread(target=lambda: (store.upsert(
            "c", ids[2600:2650], vectors[2600:2650], None, fingerprint="fp"), done.set()),
            daemon=True)
        thread.start()
        assert not done.wait(0.5), "a write went on past the pending segment's limit"
        release.set()
        assert done.wait(30)
        left = store._indexes.live[1].index.pending
        assert 100 < left <= 600, f"{left} points pending when the write returned"
        assert store.wait_merged(60)


def test_a_deferred_wait_for_room_comes_at_the_end_of_the_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    """Within ``room_waits_deferred`` (nested or not) an upsert past ``PENDING_MAX``
    returns at once; the outermost block's end waits until the merger has made room for
    all of them, also when the block raises (the exception then goes on)."""
    entered, release = held_graph_write
    monkeypatch.setattr(embedded, "PENDING_MAX", 200)
    vectors = mixture(3000, DIM, seed=9)
    ids = [str(i) for i in range(3000)]
    with open_store(tmp_path / "s") as store:
        _frozen_by_a_checkpoint(store, ids, vectors, entered, release)
        written, ended = threading.Event(), threading.Event()
        after: list[object] = []

        def writer() -> None:
            try:
                with store.room_waits_deferred():
                    store.upsert("c", ids[2000:2300], vectors[2000:2300], None,
                                 fingerprint="fp")
                    with store.room_waits_deferred():
                        store.upsert("c", ids[2300:2400], vectors[2300:2400], None,
                                     fingerprint="fp")
                    written.set()
                    raise RuntimeError("the block fails")
            except RuntimeError as exc:
                after.append(exc)
            after.append(getattr(store._local, "room_waits", None))
            ended.set()

        threading.Thread(target=writer, daemon=True).start()
        assert written.wait(10), "an upsert in the block waited for room"
        assert not ended.wait(0.5), "the block ended with the pending segment full"
        release.set()
        assert ended.wait(30)
        assert store._indexes.live[1].index.pending <= 200
        assert isinstance(after[0], RuntimeError) and after[1] is None, after


def test_the_merger_slices_on_every_core_while_a_writer_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a writer waits for the merger (and no search runs) the merger takes wide
    slices: at least ``WIDE_MIN`` points each, which faiss spreads over the cores, where
    a 10 ms slice of a large graph holds too few for its threads to start."""
    slices: list[tuple[bool, int]] = []
    real = index_manager.IndexManager.merge_step

    def recorded(self: index_manager.IndexManager, *args: Any, **kwargs: Any) -> int:
        before = self.pending()
        self._merge_rate = 1.0  # (a slow graph: a narrow slice takes one point)
        left = real(self, *args, **kwargs)
        slices.append((kwargs.get("wide", False), before - left))
        return left

    vectors = mixture(3000, DIM, seed=8)
    ids = [str(i) for i in range(3000)]
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0})
        store.upsert("c", ids[:2000], vectors[:2000], None, fingerprint="fp")
        assert store.wait_merged(60)
        monkeypatch.setattr(index_manager.IndexManager, "merge_step", recorded)
        monkeypatch.setattr(embedded, "PENDING_MAX", 200)
        _within(60, lambda: store.upsert("c", ids[2000:2600], vectors[2000:2600], None,
                                         fingerprint="fp"))  # 600: past 200, it waits
        wide = [moved for is_wide, moved in slices if is_wide]
        assert wide and max(wide) >= index_manager.WIDE_MIN, slices
        assert store._indexes.live[1].index.pending <= 200
        assert store.wait_merged(60)
        after = len(slices)
        store.upsert("c", ids[2600:2700], vectors[2600:2700], None, fingerprint="fp")
        assert store.wait_merged(60)  # (nobody waits for the merger: narrow slices)
        assert slices[after:] and all(not is_wide and moved <= 1
                                      for is_wide, moved in slices[after:]), slices[after:]


# The children's store: 2,000 points checkpointed, a checkpoint due after 300 changes;
# each child then patches the graph write and deletes 300 points.
_CHILD_STORE = textwrap.dedent("""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 24)).astype(np.float32)
    store = open_store(sys.argv[1])
    store.create_collection("c", 24, fingerprint="fp",
                            index_params={"exact_threshold": 0, "checkpoint_every": 300})
    store.upsert("c", [str(i) for i in range(2000)], x, None, fingerprint="fp")
    store.wait_checkpointed(60)
""")

KILLED_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from embedops.store import open_store
    from embedops.store.hnsw_graph import HnswGraph
    real = HnswGraph.write_graph
    def stuck(self, write):
        real(self, write)  # the whole graph file, then nothing more: killed here
        print("written", flush=True)
        time.sleep(600)
""") + _CHILD_STORE + textwrap.dedent("""
    HnswGraph.write_graph = stuck
    store.delete("c", ids=[str(i) for i in range(300)])
    print("deleted", flush=True)
    time.sleep(600)
""")


def _whole_on_reopen(path: Path) -> EmbeddedStore:
    """The children's store opened again: index and SQLite agree, 1,700 points."""
    store = EmbeddedStore(path)
    report = store.verify_index("c")
    assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    assert report["points"] == 1700
    return store


def test_a_kill_while_the_graph_is_written_leaves_the_last_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s"
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        out = child.stdout
        lines = _within(120, lambda: [out.readline().strip() for _ in range(2)])
        assert sorted(lines) == ["deleted", "written"], lines
        before = json.loads((path / "index" / "1.json").read_text())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert before["seq"] == 1  # the load's checkpoint; the new graph file is not named
    with _whole_on_reopen(path) as store:
        x = np.random.default_rng(5).standard_normal((2000, 24)).astype(np.float32)
        assert [h[0].id for h in store.search("c", x[300:400], k=1)] == [
            str(i) for i in range(300, 400)]
    assert not list((path / "index").glob(".*.tmp"))  # (the killed write's, cleared)


EXITING_CHILD = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    from embedops.store import hnsw_graph, open_store
    from embedops.store.hnsw_graph import HnswGraph
    hnsw_graph.WRITE_BLOCK_BYTES = 4096  # ~100 blocks, 50 ms each: still writing at exit
    real, started = HnswGraph.write_graph, threading.Event()
    def slow(self, write):
        def paced(data):
            started.set()
            time.sleep(0.05)
            return write(data)
        real(self, paced)
""") + _CHILD_STORE + textwrap.dedent("""
    HnswGraph.write_graph = slow
    store.delete("c", ids=[str(i) for i in range(300)])  # a checkpoint comes due
    assert started.wait(60)
    print("exiting", flush=True)  # without closing the store
""")


def test_exiting_without_close_while_a_checkpoint_is_written_is_clean(tmp_path: Path) -> None:
    """The interpreter exits while a background checkpoint writes its graph: the write is
    given up (faiss's writer calls back into Python, which a thread cannot do while the
    interpreter shuts down: the process aborted with a fatal error), the last checkpoint
    stays and the next open has every point."""
    path = tmp_path / "s"
    done = subprocess.run([sys.executable, "-c", EXITING_CHILD, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "exiting"), done.stderr[-2000:]
    assert "Fatal Python error" not in done.stderr
    assert json.loads((path / "index" / "1.json").read_text())["seq"] == 1
    assert not list((path / "index").glob(".*.tmp"))  # (the given-up write's, removed)
    _whole_on_reopen(path).close()


@pytest.mark.parametrize("segment_size", [0, 200_000])
def test_a_checkpoint_with_pending_points_is_merged_by_the_next_open_and_by_close(
        tmp_path: Path, segment_size: int) -> None:
    """A due checkpoint right after a bulk write holds the points still pending; a
    read-write handle that loads it merges them, and a clean close leaves a checkpoint
    with none, so read-only handles (which merge only the changes they replay) search
    no pending segment. One graph: formats 3 (pending) and 2 (none); segments: format 4,
    each segment's entry naming its pending file or none."""
    import shutil

    vectors = mixture(3000, DIM, seed=6)
    path, copy = tmp_path / "s", tmp_path / "copy"

    def pending(manifest: dict[str, Any] | None) -> Any:
        assert manifest is not None
        if segment_size:
            assert manifest["format"] == 4
            return manifest["segments"][0]["pending"]
        assert manifest["format"] == (3 if manifest["pending"] else 2)
        return manifest["pending"]

    with open_store(path) as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={**PARAMS, "segment_size": segment_size})
        store.upsert("c", [str(i) for i in range(3000)], vectors, None, fingerprint="fp")
        assert store.wait_checkpointed(60)
        assert pending(read_manifest(path / "index", 1))
        shutil.copytree(path, copy)  # (the writer is idle: a crash's leftovers, as it were)
        assert store.wait_merged(60)
    assert pending(read_manifest(path / "index", 1)) is None
    with open_store(path, read_only=True) as reader:
        assert reader.stats("c")["index_pending"] == 0
    (copy / "LOCK").unlink(missing_ok=True)
    with open_store(copy) as store:
        assert store.search("c", vectors[7], k=1)[0][0].id == "7"  # (loads the index)
        assert store.wait_merged(20), "the restored pending points were never merged"
        report = store.verify_index("c")
        assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])


def test_a_failed_graph_write_leaves_the_last_checkpoint_and_is_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = HnswGraph.write_graph
    failures = [1]

    def failing(self: HnswGraph, write: Callable[[bytes], int]) -> None:
        if failures:
            failures.pop()
            write(b"partial")
            raise OSError(28, "No space left on device")
        real(self, write)

    vectors = mixture(3000, DIM, seed=7)
    ids = [str(i) for i in range(3000)]
    path = tmp_path / "s"
    with open_store(path) as store:
        store.create_collection("c", DIM, fingerprint="fp", index_params=PARAMS)
        store.upsert("c", ids[:2000], vectors[:2000], None, fingerprint="fp")
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        before = read_manifest(path / "index", 1)
        monkeypatch.setattr(HnswGraph, "write_graph", failing)
        store.delete("c", ids=ids[:300])  # due: the write fails
        assert store.wait_checkpointed(60) and not failures
        assert read_manifest(path / "index", 1) == before
        assert before is not None
        named = {p.name for p in checkpoint_files.manifest_files(path / "index", before)}
        assert {p.name for p in (path / "index").iterdir()} == named | {"1.json"}
        conn = sqlite3.connect(path / "store.sqlite")
        assert conn.execute("SELECT pruned_seq FROM collections").fetchone()[0] == 1
        store.upsert("c", ids[2000:2400], vectors[2000:2400], None, fingerprint="fp")
        assert store.wait_checkpointed(60)  # due again after that write: written now
        after = read_manifest(path / "index", 1)
        assert after is not None and after["seq"] == 3
        assert conn.execute("SELECT pruned_seq FROM collections").fetchone()[0] == 3
        conn.close()
        assert [h[0].id for h in store.search("c", vectors[2000:2400], k=1)] == ids[2000:2400]
