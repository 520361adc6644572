"""The embedded store keeps vectors in a table of their own (schema migration 3): a
deleted point's vector stays until the checkpoint that prunes its tombstone sweeps it;
dropping a collection takes its vectors; stores written before get their vectors moved."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.errors import StoreError
from embedops.store import open_store
from embedops.store.catalog import lookup, payload_index_name, totals

from .storedata import back_to_schema_2, mixture

PARAMS = {"exact_threshold": 0}


def _vector_rows(store: Any) -> int:
    (n,) = store.conn.execute("SELECT COUNT(*) FROM vectors").fetchone()
    return int(n)


def _orphans(store: Any) -> int:
    """Vectors whose point is gone."""
    (n,) = store.conn.execute("SELECT COUNT(*) FROM vectors WHERE rowkey NOT IN "
                              "(SELECT rowkey FROM points)").fetchone()
    return int(n)


def _index_names(store: Any) -> list[str]:
    return sorted(name for (name,) in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'points' "
        "AND sql IS NOT NULL"))


def _points_packed(store: Any) -> None:
    """The points' rows fill their pages (a migration that dropped the column in place
    left two rows a page, as with the vectors in them)."""
    try:
        (pages,) = store.conn.execute(
            "SELECT COUNT(*) FROM dbstat WHERE name = 'points' AND pagetype = 'leaf'"
        ).fetchone()
    except sqlite3.OperationalError:  # (a SQLite built without the dbstat table)
        pytest.skip("this SQLite has no dbstat table")
    (rows,) = store.conn.execute("SELECT COUNT(*) FROM points").fetchone()
    assert rows / pages > 20, (rows, pages)


def _same(stored: np.ndarray, written: np.ndarray) -> None:
    """The vectors stored are the ones written (unit length: the metric is cosine)."""
    unit = written / np.linalg.norm(written, axis=1, keepdims=True)
    np.testing.assert_allclose(stored, unit, rtol=0, atol=1e-6)


def _vectors_of(store: Any, collection: str, ids: list[str]) -> np.ndarray:
    return np.stack([p.vector for p in store.get(collection, ids, with_vectors=True)])


def _checkpointed(store: Any, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Collection ``c`` of ``n`` points (ids "0".."n-1"), its index checkpointed: no
    tombstone left to prune. Returns the vectors and ids written."""
    vectors, ids = mixture(n, 24, seed=seed), [str(i) for i in range(n)]
    store.create_collection("c", 24, fingerprint="fp", index_params=PARAMS)
    store.upsert("c", ids, vectors, None, fingerprint="fp")
    store.checkpoint("c")
    return vectors, ids


def test_a_delete_leaves_the_vector_to_the_checkpoint_that_prunes_its_tombstone(
        tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        vectors, ids = _checkpointed(store, 300, seed=3)
        assert store.delete("c", ids=ids[:20]) == 20
        assert store.delete("c", filter={"field": "missing", "eq": 1}) == 0
        # the delete wrote the points' rows and tombstones only
        assert _vector_rows(store) == 300 and _orphans(store) == 20
        assert store.get("c", ids[:20], with_vectors=True) == []
        assert store.count("c") == 280 and totals(store.conn, lookup(store.conn, "c").cid
                                                   ).points == 280
        found = store.search("c", vectors[:20], k=1, exact=True)
        assert all(hits[0].id not in ids[:20] for hits in found)
        # the id comes back as a new point (a new row key): its vector is the new one
        moved = vectors[0] + 0.5
        store.upsert("c", [ids[0]], moved[None, :], None, fingerprint="fp")
        store.checkpoint("c")  # prunes the tombstones, and sweeps their vectors
        assert _orphans(store) == 0 and _vector_rows(store) == 281
        _same(_vectors_of(store, "c", [ids[0]]), moved[None, :])
        _same(_vectors_of(store, "c", ids[20:]), vectors[20:])
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []


def test_a_sweep_left_by_a_crash_happens_at_the_next_checkpoint(tmp_path: Path) -> None:
    """Deleted points' vectors left when the process ended before a checkpoint: the
    tombstones are in SQLite, and the next checkpoint sweeps them."""
    with open_store(tmp_path / "s") as store:
        vectors, ids = _checkpointed(store, 200, seed=8)
        store.delete("c", ids=ids[:50])
        # as a process killed now leaves the file: rows deleted, vectors not yet swept
        copy = sqlite3.connect(tmp_path / "crashed.sqlite")
        store.conn.backup(copy)
        copy.close()
    (tmp_path / "s" / "store.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "s" / f"store.sqlite{suffix}").unlink(missing_ok=True)
    (tmp_path / "crashed.sqlite").rename(tmp_path / "s" / "store.sqlite")
    with open_store(tmp_path / "s") as store:
        assert _orphans(store) == 50 and store.count("c") == 150
        store.upsert("c", ["new"], mixture(1, 24, seed=9), None, fingerprint="fp")
        store.checkpoint("c")
        assert _orphans(store) == 0 and _vector_rows(store) == 151
        _same(_vectors_of(store, "c", ids[50:]), vectors[50:])


def test_dropping_a_collection_takes_its_vectors_swept_or_not(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        for name, seed in (("gone", 1), ("kept", 2)):
            store.create_collection(name, 24, fingerprint="fp", index_params=PARAMS)
            store.upsert(name, [str(i) for i in range(100)], mixture(100, 24, seed=seed),
                         None, fingerprint="fp")
        store.delete("gone", ids=["1", "2", "3"])  # (vectors not swept yet)
        store.delete("kept", ids=["1"])
        store.drop_collection("gone")
        assert _vector_rows(store) == 100 and _orphans(store) == 1
        _same(
            _vectors_of(store, "kept", [str(i) for i in range(2, 100)]),
            mixture(100, 24, seed=2)[2:])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_a_store_written_with_vectors_in_its_rows_gets_them_moved_on_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, dtype: str) -> None:
    """A store of schema version 2 (vectors in the points' rows), with deleted points'
    tombstones and a payload index: the first read-write open moves the vectors to their
    table; every point, vector, search result and total is as before, and writes go on."""
    path = tmp_path / "s"
    vectors = mixture(400, 24, seed=11)
    ids = [str(i) for i in range(400)]
    with open_store(path) as store:
        store.create_collection("c", 24, fingerprint="fp", dtype=dtype, index_params=PARAMS)
        store.create_payload_index("c", "n")
        store.upsert("c", ids, vectors, [{"n": i % 7} for i in range(400)], fingerprint="fp")
        store.upsert("c", ["last"], vectors[:1], None, fingerprint="fp")
        store.checkpoint("c")
        store.delete("c", ids=ids[:30])  # (tombstones after the checkpoint)
        store.delete("c", ids=["last"])  # (the highest row key: never to be given again)
        (highest,) = store.conn.execute("SELECT MAX(rowkey) FROM tombstones").fetchone()
        indexes = _index_names(store)
        before_hits = store.search("c", vectors[100:110], k=5)
        before_filtered = store.search("c", vectors[100:110], k=5, filter={"field": "n",
                                                                            "eq": 3})
        before_totals = tuple(totals(store.conn, lookup(store.conn, "c").cid))
    back_to_schema_2(path)
    with pytest.raises(StoreError, match="open it once read-write"):
        open_store(path, read_only=True)
    with caplog.at_level(logging.DEBUG, logger="embedops.migrations"), open_store(path) as store:
        assert "applying schema migration 3 (vectors apart)" in caplog.text
        columns = [r[1] for r in store.conn.execute("PRAGMA table_info(points)")]
        assert columns == ["rowkey", "cid", "id", "payload", "seq"]
        assert _index_names(store) == indexes  # (the payload index made again)
        plan = " ".join(r[3] for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT rowkey FROM points WHERE cid = 1 AND "
            "json_extract(payload, '$.n') = 3"))
        assert "payload_" in plan, plan
        _points_packed(store)
        assert _vector_rows(store) == 370 and _orphans(store) == 0
        _same(_vectors_of(store, "c", ids[30:]), vectors[30:])
        assert tuple(totals(store.conn, lookup(store.conn, "c").cid)) == before_totals
        assert store.search("c", vectors[100:110], k=5) == before_hits
        assert store.search("c", vectors[100:110], k=5,
                            filter={"field": "n", "eq": 3}) == before_filtered
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []
        store.upsert("c", ids[:40], vectors[40:80], None, fingerprint="fp")
        assert store.count("c") == 400
        (again,) = store.conn.execute(  # (deleted, then written again: a new row key)
            "SELECT rowkey FROM points WHERE id = '0'").fetchone()
        assert again > highest
        _same(_vectors_of(store, "c", ids[:40]), vectors[40:80])


def test_the_migration_packs_the_points_rows_it_leaves(tmp_path: Path) -> None:
    """384-d float32 vectors in the rows put two rows on a page; after migration 3 the
    points' rows fill their pages (``ALTER TABLE … DROP COLUMN`` would leave them two a
    page until a ``VACUUM``)."""
    path = tmp_path / "s"
    rng = np.random.default_rng(2)
    with open_store(path) as store:
        for name in ("c", "d"):  # (several collections, each with a payload index)
            store.create_collection(name, 384, fingerprint="fp", index_params=PARAMS)
            store.create_payload_index(name, "n")
            store.upsert(name, [f"doc-{i}" for i in range(600)],
                         rng.standard_normal((600, 384)).astype(np.float32),
                         [{"n": i} for i in range(600)], fingerprint="fp")
        indexes = _index_names(store)
    back_to_schema_2(path)
    with open_store(path) as store:
        # the log the migration grew (a copy of the vectors), and the payload indexes
        # made again after it, cut back once it applied
        assert (path / "store.sqlite-wal").stat().st_size < 16 << 10
        assert _index_names(store) == indexes and len(indexes) == 3
        _points_packed(store)
        assert [store.count(name) for name in ("c", "d")] == [600, 600]
        assert _vector_rows(store) == 1200


def test_a_background_checkpoint_sweeps_with_searches_going_on(tmp_path: Path) -> None:
    """The background checkpoint sweeps the deleted points' vectors holding the handle's
    lock alone: a search made while a sweep is under way returns (it would wait for the
    sweep under the index lock), and the sweep finishes the job."""
    vectors = mixture(1200, 24, seed=6)
    ids = [str(i) for i in range(1200)]
    sweeping, go_on = threading.Event(), threading.Event()
    left: list[int] = []
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 24, fingerprint="fp",
                                index_params={**PARAMS, "checkpoint_every": 300})
        store.upsert("c", ids, vectors, None, fingerprint="fp")
        assert store.wait_checkpointed(60)
        sweep = store._indexes.sweep

        def held_sweep(keys: list[int]) -> None:
            sweeping.set()
            go_on.wait(30)
            sweep(keys)
            left.append(_orphans(store))  # (before the prune, which could sweep too)

        store._indexes.sweep = held_sweep
        store.delete("c", ids=ids[:500])
        assert sweeping.wait(30), "no sweep began"
        hits = _within(10, lambda: store.search("c", vectors[600:605], k=3))
        assert [h[0].id for h in hits] == ids[600:605]
        go_on.set()
        assert store.wait_checkpointed(60)
        assert left and left[-1] == 0  # the sweep itself deleted them
        assert _orphans(store) == 0 and _vector_rows(store) == 700


def _within(seconds: float, work: Any) -> Any:
    """``work()`` in a daemon thread; fails (not hangs) when it takes longer."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still waiting after {seconds} s"
    return out[0]


def test_a_payload_index_that_names_no_field_does_not_stop_the_store_opening(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A catalog row declaring a payload index on a name no filter accepts (a damaged
    catalog): every read-write open makes the indexes it can, says which it could not,
    and opens."""
    path = tmp_path / "s"
    with open_store(path) as store:
        store.create_collection("c", 24, fingerprint="fp", index_params=PARAMS)
        store.create_payload_index("c", "n")
        store.upsert("c", ["a"], mixture(1, 24, seed=1), [{"n": 1}], fingerprint="fp")
        store.conn.execute("UPDATE collections SET payload_indexes = ?",
                           (json.dumps(["n", "not a field!"]),))
        store.conn.execute(f"DROP INDEX {payload_index_name(1, 'n')}")
    with caplog.at_level(logging.WARNING, logger="embedops.store"), open_store(path) as store:
        assert "'not a field!', which is not a field name" in caplog.text
        assert _index_names(store) == sorted([payload_index_name(1, "n"), "points_cid_seq"])
        assert store.count("c", filter={"field": "n", "eq": 1}) == 1
