"""Searches run on read connections of their own, beside writes: a write waiting on
SQLite does not hold up searches, concurrent searches, writes and merges stay correct,
and closing a handle under load fails searches cleanly."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from embedops.errors import StoreError
from embedops.store import open_store
from embedops.store.catalog import lookup
from embedops.store.shared_lock import SharedLock

from .storedata import mixture

DIM = 32


def _store_with_points(path: Path, n: int) -> tuple[object, np.ndarray]:
    store = open_store(path)
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    data = mixture(n, DIM, seed=5)
    store.upsert("c", [str(i) for i in range(n)], data, None, fingerprint="fp")
    return store, data


def test_a_write_waiting_for_sqlite_does_not_hold_up_reads(tmp_path: Path) -> None:
    store, data = _store_with_points(tmp_path / "s", 2000)
    # another connection holds SQLite's write lock: the store's next write waits for it
    blocker = sqlite3.connect(tmp_path / "s" / "store.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    wrote: list[int] = []
    writer = threading.Thread(target=lambda: wrote.append(store.upsert(
        "c", ["new"], data[:1] * -1, None, fingerprint="fp")))
    writer.start()
    time.sleep(0.3)  # the upsert is now inside SQLite's busy wait, holding the handle
    assert writer.is_alive()
    started = time.perf_counter()
    hits = store.search("c", data[7], k=3)[0]
    # the other reads a service makes per request do not wait either
    info, points = store.get_collection("c"), store.get("c", ["7"])
    counted, names = store.count("c"), [c.name for c in store.list_collections()]
    took = time.perf_counter() - started
    blocker.execute("ROLLBACK")
    blocker.close()
    writer.join(timeout=30)
    assert hits[0].id == "7" and points[0].id == "7"
    assert (info.points, counted, names) == (2000, 2000, ["c"])
    assert took < 1.0, f"the reads waited {took:.2f} s for a write"
    assert wrote == [1] and store.get("c", ["new"])[0].id == "new"
    store.close()


def test_searches_writes_and_merges_run_together_correctly(tmp_path: Path) -> None:
    store, data = _store_with_points(tmp_path / "s", 3000)
    moved = mixture(3000, DIM, seed=9)
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def searcher(offset: int) -> None:
        try:
            while not stop.is_set():
                for i in range(offset, 3000, 211):
                    hits = store.search("c", data[i], k=10)[0]
                    # every hit is a live point; the count never falls short
                    assert len(hits) == 10 and len({h.id for h in hits}) == 10
                    answered[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher, args=(o,)) for o in range(3)]
    for thread in threads:
        thread.start()
    for start in range(0, 3000, 300):  # replace, delete and re-add slices meanwhile
        ids = [str(i) for i in range(start, start + 300)]
        store.upsert("c", ids, moved[start:start + 300], None, fingerprint="fp")
        store.delete("c", ids=ids[:50])
        store.upsert("c", ids[:50], moved[start:start + 50], None, fingerprint="fp")
    assert store.wait_merged(timeout=120)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and answered[0] > 30
    for i in (0, 1234, 2999):  # the index answers with the replaced vectors
        assert store.search("c", moved[i], k=1)[0][0].id == str(i)
    report = store.verify_index("c")
    assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    store.close()


def test_closing_a_handle_under_search_load_fails_searches_cleanly(tmp_path: Path) -> None:
    store, data = _store_with_points(tmp_path / "s", 1500)
    outcomes: list[str] = []

    def searcher() -> None:
        for _ in range(10_000):
            try:
                store.search("c", data[3], k=5)
            except StoreError as exc:
                outcomes.append(str(exc))
                return
            except BaseException as exc:
                outcomes.append(f"unexpected {type(exc).__name__}: {exc}")
                return
        outcomes.append("never closed")

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    store.close()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == ["store handle is closed"] * 3


def test_shared_lock_admits_readers_together_and_writers_alone() -> None:
    lock = SharedLock()
    inside = threading.Barrier(2, timeout=5)

    def reader() -> None:
        with lock.shared():
            inside.wait()  # both readers are inside at once, or this times out

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    assert not inside.broken

    order: list[str] = []
    with lock.shared():
        writer = threading.Thread(target=lambda: _hold(lock, order, "writer"))
        writer.start()
        time.sleep(0.1)  # the writer waits for this reader ...
        late = threading.Thread(target=lambda: _hold(lock, order, "late reader", shared=True))
        late.start()
        time.sleep(0.1)  # ... and a reader arriving after it waits for the writer
        assert order == []
    writer.join(timeout=5)
    late.join(timeout=5)
    assert order == ["writer", "late reader"]
    with lock.exclusive(), lock.exclusive(), lock.shared():  # reentrant for its holder
        pass


def test_shared_lock_never_admits_a_writer_beside_anyone_under_contention() -> None:
    lock = SharedLock()
    inside = {"readers": 0, "writers": 0}
    count = threading.Lock()
    seen: list[str] = []
    stop = time.monotonic() + 0.6

    def enter(kind: str) -> None:
        with count:
            inside[kind] += 1
            if inside["writers"] > 1 or (inside["writers"] and inside["readers"]):
                seen.append(f"{inside}")

    def leave(kind: str) -> None:
        with count:
            inside[kind] -= 1

    def reader() -> None:
        while time.monotonic() < stop:
            with lock.shared():
                enter("readers")
                time.sleep(0)
                leave("readers")

    def writer() -> None:
        while time.monotonic() < stop:
            with lock.exclusive():
                enter("writers")
                with lock.shared():  # (the holder may also take the shared side)
                    time.sleep(0)
                leave("writers")
            time.sleep(0.001)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    threads += [threading.Thread(target=writer, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:  # (a lock that deadlocks fails here instead of hanging)
        thread.join(timeout=max(0.1, stop + 20 - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads)
    assert seen == []
    assert lock._readers == 0 and lock._writer is None and lock._writers_waiting == 0


def _hold(lock: SharedLock, order: list[str], name: str, shared: bool = False) -> None:
    with lock.shared() if shared else lock.exclusive():
        order.append(name)


@pytest.mark.parametrize("read_only", [False, True])
def test_searches_see_every_committed_write(tmp_path: Path, read_only: bool) -> None:
    store, data = _store_with_points(tmp_path / "s", 1200)
    reader = open_store(tmp_path / "s", read_only=True) if read_only else store
    for i in range(0, 40, 4):  # read-your-writes: each write is found by the next search
        store.upsert("c", [f"w{i}"], -data[i:i + 1], None, fingerprint="fp")
        assert reader.search("c", -data[i], k=1)[0][0].id == f"w{i}"
        store.delete("c", ids=[f"w{i}"])
        assert f"w{i}" not in {h.id for h in reader.search("c", -data[i], k=5)[0]}
    if read_only:
        reader.close()
    store.close()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux thread priorities")
def test_the_merger_keeps_the_priority_of_the_thread_that_opened_the_store(
        tmp_path: Path) -> None:
    """A writer thread running at lowered priority (the service's real-time worker) must
    not hand that priority to the merger, which holds the index lock searches wait for."""
    import os

    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    data = mixture(500, DIM, seed=4)

    def background_writer() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        store.upsert("c", [str(i) for i in range(500)], data, None, fingerprint="fp")

    writer = threading.Thread(target=background_writer)
    writer.start()
    writer.join()
    assert store.wait_merged(timeout=60)
    merger = store._merger
    assert merger is not None and merger.native_id is not None

    def nice_of(tid: int) -> int:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[16])  # field 19: nice

    assert nice_of(merger.native_id) == nice_of(threading.get_native_id())
    store.close()


def test_searches_beside_deletes_do_not_fall_back_to_scanning(tmp_path: Path) -> None:
    """A delete commits before it reaches the index; a search in between finds graph
    hits whose rows are gone. It searches the graph deeper, not the whole collection
    (which held deletes and searches up for a full scan each: ~1k deletes/s)."""
    store, data = _store_with_points(tmp_path / "s", 6000)
    scans = [0]
    original = store._search._exact_scan

    def counted(*args: object, **kwargs: object) -> object:
        scans[0] += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store._search._exact_scan = counted  # type: ignore[method-assign]
    stop, short = threading.Event(), [0]
    searched = [0]

    def searcher() -> None:
        while not stop.is_set():
            i = 3000 + searched[0] % 3000  # points that stay
            if len(store.search("c", data[i], k=10)[0]) < 10:
                short[0] += 1
            searched[0] += 1

    thread = threading.Thread(target=searcher)
    thread.start()
    for start in range(0, 3000, 100):
        store.delete("c", ids=[str(i) for i in range(start, start + 100)])
    stop.set()
    thread.join(timeout=60)
    assert searched[0] > 30 and short[0] == 0
    assert scans[0] == 0, f"{scans[0]} searches scanned the whole collection"
    store.close()


def test_hits_carry_ids_and_payloads_exactly_as_written(tmp_path: Path) -> None:
    """Search fetches ids and payloads as one JSON array from SQLite: ids and payload
    values JSON must escape, or that orjson alone would misread (integers beyond 64
    bits: it reads them as floats), come back unchanged."""
    ids = ['q"uote', "back\\slash", "emoji 🙂", "tab\tnew\nline", "ünïcödé", "plain"]
    payloads = [{"big": 2**70 + 1, "small": -(2**64) - 3}, {"s": 'a "b" \\ c'},
                {"nested": {"x": [1, 2.5, None]}}, {"text": "\u2028 line sep"},
                {"f": 1e-300, "neg": -0.0, "digits": "12345678901234567890"}, {}]
    vectors = mixture(len(ids), DIM, seed=11)
    for dtype in ("float32", "int8"):  # int8 rescoring fetches rows with their vectors
        with open_store(tmp_path / dtype) as store:
            store.create_collection("c", DIM, fingerprint="fp", dtype=dtype,
                                    index_params={"exact_threshold": 0})
            store.upsert("c", ids, vectors, payloads, fingerprint="fp")
            assert store.wait_merged(60)
            for i, vector in enumerate(vectors):
                hit = store.search("c", vector, k=1)[0][0]
                assert (hit.id, hit.payload) == (ids[i], payloads[i])
            assert [p.payload for p in store.get("c", ids)] == payloads



def test_the_search_plan_counts_points_from_an_index_that_is_in_step(tmp_path: Path) -> None:
    """A search plans with the loaded index's point count instead of counting the rows
    in SQLite, when the index reflects the catalog's change sequence. The two counts
    must agree after every kind of write, a reopen, and on a handle that catches up
    with another's writes."""
    store, data = _store_with_points(tmp_path / "s", 600)
    reader = open_store(tmp_path / "s", read_only=True)

    def check(handle: object) -> None:
        handle.search("c", data[0], 3)  # loads the index or catches it up
        row = lookup(handle.conn, "c")
        (in_sql,) = handle.conn.execute("SELECT COUNT(*) FROM points WHERE cid = ?",
                                        (row.cid,)).fetchone()
        # as a search counts: with the index lock held (a merge slice moving points
        # from the pending segment into the graph must not run meanwhile)
        with handle._index_lock.shared():
            assert handle._indexes.live[row.cid].seq == row.seq  # in step: counted from it
            assert handle._search.point_count(row, index_held=True) == in_sql

    def both() -> None:
        check(store)
        check(reader)

    both()
    moved = mixture(150, DIM, seed=9)  # 100 existing ids replaced, 50 new ones
    store.upsert("c", [str(i) for i in range(500, 650)], moved, None, fingerprint="fp")
    both()
    same = np.repeat(data[:1], 20, axis=0)  # 20 points sharing one vector (one node)
    store.upsert("c", [f"dup{i}" for i in range(20)], same, None, fingerprint="fp")
    both()
    store.delete("c", ids=[*(f"dup{i}" for i in range(0, 20, 3)), *map(str, range(40))])
    both()
    store.update_payload("c", {"tag": 1}, ids=["41", "42"])
    both()
    store.close()
    store = open_store(tmp_path / "s")  # the index comes from the checkpoint + replay
    both()
    assert store.count("c") == 600 + 50 + 20 - 7 - 40
    store.close()
    reader.close()


def test_a_search_a_write_behind_the_index_plans_without_counting_in_sqlite(
        tmp_path: Path) -> None:
    """A search that read the catalog before a write that was applied to the index by
    the time it got the index lock (a steady writer beside searches) plans with the
    index's count, without a statement. An index behind the catalog row would
    undercount: that one reads the count the store keeps in SQLite."""
    store, data = _store_with_points(tmp_path / "s", 300)
    behind = lookup(store.conn, "c")
    store.upsert("c", ["new"], -data[:1], None, fingerprint="fp")
    now = lookup(store.conn, "c")
    counts: list[str] = []
    store._search.conn.set_trace_callback(counts.append)
    try:
        with store._index_lock.shared():
            assert store._indexes.live[now.cid].seq == now.seq == behind.seq + 1
            assert store._search.point_count(behind, index_held=True) == 301
            assert not any("row_bytes" in sql for sql in counts)
            ahead = replace(now, seq=now.seq + 1)  # (a commit the index has not taken)
            assert store._search.point_count(ahead, index_held=True) == 301
            assert any("row_bytes" in sql for sql in counts)
    finally:
        store._search.conn.set_trace_callback(None)
    store.close()


def test_shared_lock_counts_the_threads_waiting_on_either_side() -> None:
    lock = SharedLock()
    assert lock.waiting() == 0
    lock.acquire_exclusive()
    reader = threading.Thread(target=lambda: _hold(lock, [], "reader", shared=True),
                              daemon=True)
    writer = threading.Thread(target=lambda: _hold(lock, [], "writer"), daemon=True)
    try:
        reader.start()
        writer.start()
        deadline = time.monotonic() + 5
        while lock.waiting() < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert lock.waiting() == 2
    finally:
        lock.release_exclusive()
    reader.join(timeout=5)
    writer.join(timeout=5)
    assert lock.waiting() == 0


def test_a_draining_merger_lets_other_holders_of_the_lock_in_between_slices(
        tmp_path: Path) -> None:
    """With no search running the merger takes slice after slice, pausing only when a
    thread waits for the index lock: such a thread gets in after one slice, not after
    the whole pending segment is merged."""
    dim = 192
    store = open_store(tmp_path / "s")
    store.create_collection("c", dim, fingerprint="fp", index_params={"exact_threshold": 0})
    data = mixture(22_000, dim, seed=9)
    store.upsert("c", [str(i) for i in range(2_000)], data[:2_000], None, fingerprint="fp")
    assert store.wait_merged(timeout=60)
    store.upsert("c", [str(i) for i in range(2_000, 22_000)], data[2_000:], None,
                 fingerprint="fp")  # (all pending: the merger drains them in slices)
    waits: list[float] = []
    while True:
        started = time.perf_counter()
        store.index_memory_bytes()  # (takes the index lock shared, as a search does)
        waits.append(time.perf_counter() - started)
        with store._index_lock.shared():
            if not store._indexes.pending():
                break
        time.sleep(0.02)
    store.close()
    assert len(waits) >= 10, "the pending points were merged too fast to test this"
    assert max(waits) < 0.5, f"waited {max(waits):.2f} s for the lock"
