"""Background compaction: after many replacements the handle rebuilds the graph without
its tombstones while searches go on, recall comes back to a fresh build's, and a close
or a checkpoint during a compaction loses nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from embedops.store.compaction import COMPACT_MIN, build_from_snapshot
from embedops.store.embedded import EmbeddedStore
from embedops.store.exact import scores, top_k

from .storedata import mixture

DIM, K = 32, 10
PARAMS = {"exact_threshold": 0, "expansion_search": 16}  # a shallow search shows damage


def _recall(store: EmbeddedStore, data: np.ndarray, queries: np.ndarray) -> float:
    truth, _ = top_k(scores(queries, data, "cosine"), K)
    found = store.search("c", queries, k=K)
    return float(np.mean([len({int(h.id) for h in hits} & set(t.tolist())) / K
                          for hits, t in zip(found, truth, strict=True)]))


def _filled(path: Path, n: int) -> tuple[EmbeddedStore, np.ndarray]:
    store = open_store(path)
    store.create_collection("c", DIM, fingerprint="fp", index_params=PARAMS)
    data = mixture(n, DIM, seed=21)
    for start in range(0, n, 1000):
        store.upsert("c", [str(i) for i in range(start, min(start + 1000, n))],
                     data[start:start + 1000], None, fingerprint="fp")
    assert store.wait_merged(timeout=120)
    store.checkpoint("c")
    return store, data


@pytest.mark.slow
def test_replacements_are_compacted_away_while_searches_run(tmp_path: Path) -> None:
    n = 6000
    store, data = _filled(tmp_path / "s", n)
    queries = mixture(200, DIM, seed=22)
    fresh = _recall(store, data, queries)
    untouched = np.arange(n - 300, n)  # never replaced: each must always find itself
    errors: list[str] = []
    searched = [0]
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            for i in untouched[::7].tolist():
                hits = store.search("c", data[i], k=K)[0]
                if len(hits) != K or hits[0].id != str(i):
                    errors.append(f"point {i}: {[h.id for h in hits[:3]]}")
                searched[0] += 1

    thread = threading.Thread(target=searcher)
    thread.start()
    rng = np.random.default_rng(5)
    replaced = rng.choice(n - 300, size=int(0.3 * n), replace=False)  # 30% of the points
    moved = data.copy()
    moved[replaced] = mixture(len(replaced), DIM, seed=23)
    for part in np.array_split(replaced, 6):
        store.upsert("c", [str(i) for i in part], moved[part], None, fingerprint="fp")
    assert store.wait_compacted(timeout=300) and store.wait_merged(timeout=120)
    stop.set()
    thread.join(timeout=60)
    stats = store.stats("c")
    after = _recall(store, moved, queries)
    assert errors == [] and searched[0] > 50
    assert stats["deleted"] < COMPACT_MIN, stats  # the tombstones are gone
    assert after >= fresh - 0.005, (fresh, after)
    report = store.verify_index("c")
    assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    store.close()
    with open_store(tmp_path / "s", read_only=True) as reopened:
        assert reopened.count("c") == n
        assert reopened.search("c", moved[replaced[0]], k=1)[0][0].id == str(replaced[0])


def test_a_compaction_is_not_installed_after_a_checkpoint_pruned_its_replay(
        tmp_path: Path) -> None:
    """A checkpoint after the snapshot prunes tombstones the catch-up would need: the
    compacted graph is dropped, and the index stays right."""
    import sqlite3

    store, data = _filled(tmp_path / "s", 1500)
    reader = sqlite3.connect(f"file:{tmp_path / 's' / 'store.sqlite'}?mode=ro", uri=True,
                             isolation_level=None)
    fresh, covers = build_from_snapshot(reader, store.conn.execute(
        "SELECT cid FROM collections").fetchone()[0], lambda held: None)
    reader.close()
    store.delete("c", ids=[str(i) for i in range(100)])
    store.checkpoint("c")  # prunes the 100 tombstones the snapshot predates
    with store._lock, store._index_lock.exclusive():
        assert store._indexes.install(fresh, covers) is False
    assert 0 not in {int(h.id) for h in store.search("c", data[0], k=5)[0]}
    assert store.verify_index("c")["ghosts"] == []
    store.close()


def test_closing_during_a_compaction_stops_it_and_loses_nothing(tmp_path: Path) -> None:
    store, _ = _filled(tmp_path / "s", 4000)
    moved = mixture(1500, DIM, seed=31)
    store.upsert("c", [str(i) for i in range(1500)], moved, None, fingerprint="fp")
    with store._compaction:  # 1,500 tombstones asked for one
        assert store._compacting or store._compact_wanted
    store.close()  # returns although the compaction had not finished
    assert store._compactor is not None and not store._compactor.is_alive()
    with open_store(tmp_path / "s", read_only=True) as reopened:
        assert reopened.count("c") == 4000
        assert reopened.search("c", moved[7], k=1)[0][0].id == "7"
        report = reopened.verify_index("c")
        assert (report["missing"], report["ghosts"]) == ([], [])


def test_a_write_that_calls_for_a_compaction_does_not_wait_for_a_thread_to_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction runs on a thread the handle starts when it opens: the write whose
    tombstones call for one only wakes it (starting a thread made the writer wait for the
    new thread to run, 2-30 ms on a busy machine; 0.5 s here)."""
    store, _ = _filled(tmp_path / "s", 3000)
    start = threading.Thread.start

    def slow_start(thread: threading.Thread) -> None:
        time.sleep(0.5)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    took = []
    for part in np.array_split(np.arange(1200), 4):  # past COMPACT_MIN tombstones
        began = time.perf_counter()
        store.upsert("c", [str(i) for i in part], mixture(len(part), DIM, seed=int(part[0])),
                     None, fingerprint="fp")
        took.append(time.perf_counter() - began)
    monkeypatch.setattr(threading.Thread, "start", start)
    assert max(took) < 0.4, took
    assert store.wait_compacted(timeout=120) and store.wait_merged(timeout=120)
    # it ran: 1,200 tombstones without it; those left by writes after its snapshot stay
    # until there are enough for another
    assert store.stats("c")["deleted"] < COMPACT_MIN
    store.close()


def test_deletes_leave_tombstones_to_compaction_until_they_outnumber_live_nodes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delete never waits for a rebuild while compaction can catch up; the inline
    rebuild is only the backstop past half the graph."""
    store, data = _filled(tmp_path / "s", 4000)
    monkeypatch.setattr(store, "_maybe_compact", lambda cid: None)  # compaction cannot run
    rebuilds: list[int] = []
    rebuild = store._indexes.rebuild
    monkeypatch.setattr(store._indexes, "rebuild",
                        lambda row: rebuilds.append(row.cid) or rebuild(row))
    store.delete("c", ids=[str(i) for i in range(1500)])  # 37.5%: a quarter used to rebuild
    assert rebuilds == [] and store.stats("c")["deleted"] == 1500
    store.delete("c", ids=[str(i) for i in range(1500, 2500)])  # 2,500 tombstones, 1,500 live
    assert len(rebuilds) == 1 and store.stats("c")["deleted"] == 0
    assert store.search("c", data[3000], k=1)[0][0].id == "3000"
    assert store.verify_index("c")["ghosts"] == []
    store.close()


def test_writes_made_during_a_build_are_applied_before_the_swap(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A compaction applies the writes committed while it built its graph, off the locks,
    before its swap: the swap then has nothing left to replay into the pending segment
    (which every search scores exactly, and which the swap filled under the locks)."""
    store, _ = _filled(tmp_path / "s", 3000)
    swaps: list[tuple[int, int, int, int]] = []
    install = store._indexes.install

    def recording_install(fresh, covers):  # (swap: covered seq, seq now, pending, nodes)
        now = store.conn.execute("SELECT seq FROM collections WHERE cid = ?",
                                 (covers.cid,)).fetchone()[0]
        swaps.append((covers.seq, now, fresh.pending, len(fresh)))
        return install(fresh, covers)

    monkeypatch.setattr(store._indexes, "install", recording_install)
    written = threading.Event()
    pause = store._compaction_pause

    def pause_and_write(held: float) -> None:  # (the compaction's thread, mid-build)
        if not written.is_set():
            written.set()
            store.upsert("c", [f"new{i}" for i in range(40)], mixture(40, DIM, seed=31),
                         None, fingerprint="fp")
            store.delete("c", ids=["2999"])
        pause(held)

    monkeypatch.setattr(store, "_compaction_pause", pause_and_write)
    store.upsert("c", [str(i) for i in range(600)], mixture(600, DIM, seed=32), None,
                 fingerprint="fp")  # 600 tombstones: a compaction starts
    assert store.wait_compacted(timeout=120) and store.wait_merged(timeout=120)
    assert written.is_set() and swaps
    covered, now, pending, points = swaps[0]
    assert covered == now, swaps  # caught up before the swap: nothing to replay
    assert pending == 0 and points == 3000 + 40 - 1, swaps
    hits = store.search("c", mixture(40, DIM, seed=31)[7], k=1)[0]
    assert hits[0].id == "new7" and not store.get("c", ["2999"])
    report = store.verify_index("c")
    assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
    store.close()
