"""Embedded-store specifics: on-disk format, checkpoints, rebuilds, migrations, compaction."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.errors import StoreError
from embedops.store import embedded, open_store
from embedops.store.catalog import lookup, totals
from embedops.store.schema import LATEST

from .storedata import back_to_schema_2, mixture

PARAMS = {"exact_threshold": 0}


def _store_with_points(path: Path, n: int = 2000, dtype: str = "float32") -> np.ndarray:
    vectors = mixture(n, 24, seed=5)
    with open_store(path) as store:
        store.create_collection("c", 24, fingerprint="fp", dtype=dtype, index_params=PARAMS)
        store.upsert("c", [str(i) for i in range(n)], vectors, None, fingerprint="fp")
    return vectors


def test_layout_is_sqlite_and_documented_manifest(tmp_path: Path) -> None:
    _store_with_points(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "index" / "1.json").read_text())
    assert manifest["seq"] == 1 and manifest["size"] == 2000 and manifest["dim"] == 24
    assert manifest["format"] == 4 and len(manifest["segments"]) == 1  # (the default:
    assert (tmp_path / "s" / "index" / manifest["segments"][0]["file"]).is_file()  # segments)
    conn = sqlite3.connect(tmp_path / "s" / "store.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == \
        list(range(1, LATEST + 1))
    blob, payload = conn.execute(
        "SELECT vector, payload FROM points JOIN vectors USING (rowkey) LIMIT 1").fetchone()
    assert len(blob) == 24 * 4 and json.loads(payload) == {}
    assert conn.execute("SELECT COUNT(*) FROM vectors").fetchone() == (2000,)


def test_damaged_checkpoint_is_rebuilt_from_sqlite(tmp_path: Path) -> None:
    vectors = _store_with_points(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "index" / "1.json").read_text())
    (tmp_path / "s" / "index" / manifest["segments"][0]["file"]).write_bytes(b"garbage")
    with open_store(tmp_path / "s") as store:
        report = store.verify_index("c")
        assert report["index_points"] == 2000 and report["mismatched"] == []
        assert store.search("c", vectors[7], k=1)[0][0].id == "7"


def test_rebuild_and_compaction_keep_index_equal_to_sqlite(tmp_path: Path) -> None:
    vectors = _store_with_points(tmp_path / "s", dtype="int8")
    with open_store(tmp_path / "s") as store:
        store.delete("c", ids=[str(i) for i in range(1200)])
        stats = store.stats("c")
        assert stats["points"] == 800 and stats["deleted"] == 0  # compacted: 1200 > 1000
        assert stats["checkpoint_seq"] == stats["seq"]
        store.rebuild_index("c")
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []
        assert store.search("c", vectors[1500], k=1)[0][0].id == "1500"


def test_reader_catches_up_after_writer_checkpoint_prunes_tombstones(tmp_path: Path) -> None:
    _store_with_points(tmp_path / "s")
    writer = open_store(tmp_path / "s")
    reader = open_store(tmp_path / "s", read_only=True)
    assert reader.count("c") == 2000 and reader.verify_index("c")["index_points"] == 2000
    writer.delete("c", ids=[str(i) for i in range(10)])
    writer.checkpoint("c")  # prunes the tombstones the reader has not replayed yet
    report = reader.verify_index("c")
    assert report["index_points"] == 1990 and report["ghosts"] == []
    reader.close()
    writer.close()


def test_read_only_open_of_missing_store_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no embedops store"):
        open_store(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


_DELETE_THEN_REOPEN = """
import sys
import numpy as np
from embedops.store import embedded, open_store
rng = np.random.default_rng(0)
vectors = rng.standard_normal((400, 64)).astype(np.float32)
with open_store(sys.argv[1]) as store:
    store.create_collection("c", 64, fingerprint="fp", index_params={"exact_threshold": 0})
    store.upsert("c", [str(i) for i in range(400)], vectors, None, fingerprint="fp")
with open_store(sys.argv[1]) as store:
    store.delete("c", ids=[str(i) for i in range(0, 400, 3)])  # checkpointed on close
for read_only in (True, False):
    with open_store(sys.argv[1], read_only=read_only) as store:
        hits = store.search("c", vectors[1], k=3)[0]
        print(store.count("c"), hits[0].id)
"""


def test_a_checkpoint_saved_after_deletes_loads_again(tmp_path: Path) -> None:
    """A graph checkpointed with removed nodes loads and searches (an earlier index library,
    usearch 2.25–2.26.0, aborted the process with a heap corruption on such a load); in a
    child process, so a crash fails the test instead of the test run."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _DELETE_THEN_REOPEN, str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["266", "1", "266", "1"]


def test_the_index_library_loads_beside_the_onnx_runtime() -> None:
    """The index library and onnxruntime load in one process in the order `serve` loads
    them (store first, then the ONNX embedder); an earlier index library, usearch
    2.26.2–2.26.6, crashed the process (SIGSEGV) there. Both OpenMP users (faiss and
    the ONNX runtime) then work."""
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    code = ("import numpy as np, embedops.store.hnsw_index as h, onnxruntime\n"
            "ix = h.HnswIndex(8, 'cosine', 'float32', {}, None)\n"
            "x = np.eye(8, dtype=np.float32)\n"
            "ix.add(np.arange(8), x)\n"
            "assert ix.search(x, 1)[0][:, 0].tolist() == list(range(8))\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr[-2000:]


@pytest.mark.parametrize("given", [None, 100])
def test_checkpoints_come_at_a_share_of_the_index_unless_the_interval_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: int | None) -> None:
    """A checkpoint rewrites the whole graph, so by default the interval grows with the
    index (here scaled down: 100 points or 10% of the index); a collection that sets
    ``checkpoint_every`` gets exactly that interval."""
    from embedops.store import hnsw_index, index_manager

    monkeypatch.setitem(hnsw_index.DEFAULT_PARAMS, "checkpoint_every", 100)
    monkeypatch.setattr(index_manager, "CHECKPOINT_SHARE", 0.1)
    vectors = mixture(3000, 24, seed=2)
    params = {**PARAMS, **({"checkpoint_every": given} if given else {})}
    seqs = []
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 24, fingerprint="fp", index_params=params)
        for seq, lo in enumerate(range(0, 3000, 100), start=1):
            store.upsert("c", [str(i) for i in range(lo, lo + 100)], vectors[lo:lo + 100],
                         None, fingerprint="fp")
            assert store.wait_checkpointed(60)  # (written in the background)
            manifest = json.loads((tmp_path / "s" / "index" / "1.json").read_text())
            if manifest["seq"] == seq:
                seqs.append(seq)
    if given:
        assert seqs == list(range(1, 31))
    else:  # after 100, 200, 300, ... points until 10% of the index exceeds 100 points
        gaps = np.diff([0, *seqs])
        assert seqs[:10] == list(range(1, 11)) and len(seqs) < 25
        assert (gaps[10:] >= 2).all()


def test_disk_bytes_count_the_whole_checkpoint(tmp_path: Path) -> None:
    """``stats()["disk_bytes"]`` is the collection's rows plus every file its checkpoint
    manifest names (graph, labels, shared nodes' members, pending points) and the
    manifest itself."""
    vectors = mixture(600, 24, seed=8)
    vectors[:5] = vectors[5]  # copies share a node: the checkpoint has a members file
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 24, fingerprint="fp", index_params=PARAMS)
        store.upsert("c", [str(i) for i in range(600)], vectors, None, fingerprint="fp")
        store.checkpoint("c")
        folder = tmp_path / "s" / "index"
        manifest = json.loads((folder / "1.json").read_text())
        named = [part[key] for part in manifest["segments"]
                 for key in ("file", "labels", "groups", "prints", "pending") if part.get(key)]
        assert manifest["segments"][0]["groups"] in named
        on_disk = sum((folder / name).stat().st_size for name in named) \
            + (folder / "1.json").stat().st_size
        rows = 600 * (24 * 4 + len("{}")) + sum(len(str(i)) for i in range(600))
        assert store.stats("c")["disk_bytes"] == rows + on_disk


def _summed(store: Any, cid: int) -> tuple[int, int]:
    """A collection's points and row bytes counted the slow way, over every row."""
    n, size = store.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(vector) + LENGTH(CAST(payload AS BLOB)) "
        "+ LENGTH(CAST(id AS BLOB))), 0) FROM points JOIN vectors USING (rowkey) "
        "WHERE cid = ?", (cid,)).fetchone()
    return int(n), int(size)


def _totals(store: Any, cid: int) -> tuple[int, int]:
    return tuple(totals(store.conn, cid))[:2]


def test_the_totals_follow_every_write_and_stats_reads_no_rows(tmp_path: Path) -> None:
    """The points and row bytes ``stats()`` reports are kept as rows are written (the
    catalog row's ``points`` and ``row_bytes``): after inserts, replacements with other
    lengths and payload patches that grow and shrink payloads, with ids and payloads
    beyond ASCII (bytes, not characters), both equal a count over every row, in two
    collections. A delete by ids takes its rows away exactly and, for their bytes, the
    mean row's each (``DELETE_TOTALS``): the bytes stay near the exact sum, and go to 0
    with the last row. ``stats()`` runs no statement over the collection's rows."""
    with open_store(tmp_path / "s") as store:
        for name in ("c", "d"):
            store.create_collection(name, 24, fingerprint="fp", index_params=PARAMS)
        cids = {name: lookup(store.conn, name).cid for name in ("c", "d")}
        store.upsert("c", [str(i) for i in range(300)], mixture(300, 24, seed=9),
                     [{"n": i} for i in range(300)], fingerprint="fp")
        store.upsert("d", ["x", "yé"], mixture(2, 24, seed=3), None, fingerprint="fp")
        store.upsert("c", [str(i) for i in range(250, 350)], mixture(100, 24, seed=10),
                     [{"text": "länger" * (i % 7)} for i in range(100)], fingerprint="fp")
        store.upsert("c", ["ü-1", "ü-2"], mixture(2, 24, seed=11), [{"n": 5}, {}],
                     fingerprint="fp")
        before = _totals(store, cids["c"])
        assert store.update_payload("c", {"tag": "patched ✓"},
                                    ids=[str(i) for i in range(40)]) == 40
        assert _totals(store, cids["c"])[1] > before[1]
        before = _totals(store, cids["c"])
        assert store.update_payload("c", {"n": None}, filter={"field": "n", "gte": 200}) == 50
        assert _totals(store, cids["c"])[1] < before[1]
        for cid in cids.values():
            assert _totals(store, cid) == _summed(store, cid)
        assert _totals(store, cids["d"]) == (2, 2 * 24 * 4 + 2 * len("{}") + 1 + 3)
        store.delete("c", ids=[str(i) for i in range(100, 160)] + ["missing"])
        store.delete("c", filter={"field": "n", "lt": 20})
        points, size = _totals(store, cids["c"])
        assert points == store.count("c") == _summed(store, cids["c"])[0] == 352 - 60 - 20 - 1
        assert abs(size - _summed(store, cids["c"])[1]) <= 0.05 * size
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        stats = store.stats("c")
        store.conn.set_trace_callback(None)
        assert not [sql for sql in statements if "FROM points" in sql], statements
        assert stats["points"] == 271
        assert stats["disk_bytes"] >= size > 0
        store.delete("c", filter={"field": "n", "gte": 0})
        store.delete("c", ids=[str(i) for i in range(400)] + ["ü-2"])
        assert _totals(store, cids["c"]) == (0, 0) == _summed(store, cids["c"])
        assert _totals(store, cids["d"]) == _summed(store, cids["d"])
        store.drop_collection("d")
        assert store.conn.execute("SELECT COUNT(*) FROM collections WHERE cid = ?",
                                  (cids["d"],)).fetchone() == (0,)


def test_a_delete_by_filter_counts_the_bytes_exactly_and_none_goes_below_zero(
        tmp_path: Path) -> None:
    """Rows of very different sizes: a delete with a filter takes away exactly their
    bytes; a delete by ids takes the mean row's, so replacing the large row afterwards
    would take the estimate below 0: it stops at 0 (``DELETE_TOTALS``)."""
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 24, fingerprint="fp", index_params=PARAMS)
        cid = lookup(store.conn, "c").cid
        payloads = [{"kind": "big", "text": "x" * 20_000}] + [
            {"kind": "small", "i": i} for i in range(9)]
        store.upsert("c", [str(i) for i in range(10)], mixture(10, 24, seed=2), payloads,
                     fingerprint="fp")
        store.delete("c", filter={"field": "i", "in": [1, 2, 3]})
        assert _totals(store, cid) == _summed(store, cid)
        store.delete("c", ids=["1", "5", "6", "7", "8"])
        assert _totals(store, cid)[0] == 2 and _totals(store, cid)[1] < _summed(store, cid)[1]
        store.upsert("c", ["0"], mixture(1, 24, seed=3), [{}], fingerprint="fp")
        points, size = _totals(store, cid)
        assert points == 2 and size >= 0
        assert store.stats("c")["disk_bytes"] >= 0


def test_a_store_written_before_the_totals_gets_them_on_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A store made with schema version 1 (no totals) and rows in it: opening it
    read-write sums its collections' rows once (and says so in the debug log; at INFO
    when it took a second or more: at 10M points it takes minutes), and the counts follow
    writes after."""
    path = tmp_path / "s"
    with open_store(path) as store:
        for name in ("c", "empty", "other"):
            store.create_collection(name, 24, fingerprint="fp", index_params=PARAMS)
        store.upsert("c", [str(i) for i in range(50)], mixture(50, 24, seed=4), None,
                     fingerprint="fp")
        store.upsert("other", ["a", "b"], mixture(2, 24, seed=6), [{"k": "é"}, {}],
                     fingerprint="fp")
        cid = lookup(store.conn, "c").cid
        others = [lookup(store.conn, name).cid for name in ("empty", "other")]
    back_to_schema_2(path)
    conn = sqlite3.connect(path / "store.sqlite")
    conn.executescript("ALTER TABLE collections DROP COLUMN points; "
                       "ALTER TABLE collections DROP COLUMN row_bytes; "
                       "DELETE FROM schema_migrations WHERE version > 1;")
    conn.close()
    with pytest.raises(StoreError, match="open it once read-write"):
        open_store(path, read_only=True)
    with caplog.at_level(logging.DEBUG, logger="embedops.migrations"), open_store(path) as store:
        assert "applying schema migration 2 (collection totals)" in caplog.text
        assert _totals(store, cid) == _summed(store, cid)
        assert _totals(store, cid)[0] == 50
        assert [_totals(store, other) for other in others] == \
            [(0, 0), _summed(store, others[1])] and _totals(store, others[1])[0] == 2
        store.upsert("c", ["new"], mixture(1, 24, seed=5), [{"k": "v"}], fingerprint="fp")
        assert store.stats("c")["points"] == 51
        assert _totals(store, cid) == _summed(store, cid)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_an_upsert_past_the_slice_size_is_written_by_several_statements(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    """A batch whose vectors, ids and payload texts pass ``UPSERT_SLICE_BYTES`` is
    written a slice per statement (one statement's BLOB and text must stay under
    SQLite's length limit), in one transaction: every row, its row key and the index
    end up as with one statement, payloads of every size included."""
    monkeypatch.setattr(embedded, "UPSERT_SLICE_BYTES", 300)  # 2-4 rows of 24-d float32
    statements: list[str] = []
    vectors = mixture(60, 24, seed=9)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 24, fingerprint="fp", dtype=dtype, index_params=PARAMS)
        store.upsert("c", [str(i) for i in range(20)], vectors[:20], None, fingerprint="fp")
        store.conn.set_trace_callback(statements.append)
        payloads = [{"n": i, "text": "é" * (7 * i if i != 33 else 2000)} for i in range(60)]
        ids = [str(i) for i in range(10, 70)]  # 10 replaced, 50 new
        assert store.upsert("c", ids, vectors, payloads, fingerprint="fp") == 60
        store.conn.set_trace_callback(None)
        writes = [s for s in statements if s.startswith("INSERT INTO points")]
        assert len(writes) > 10 and sum(s == "BEGIN IMMEDIATE" for s in statements) == 1
        got = {p.id: p for p in store.get("c", ids, with_vectors=True)}
        assert sorted(got) == sorted(ids) and store.count("c") == 70
        for i, pid in enumerate(ids):
            assert got[pid].payload == payloads[i]
            assert np.allclose(got[pid].vector, vectors[i], atol=0.02 if dtype == "int8"
                               else 1e-6)
        assert store.search("c", vectors[33], k=1)[0][0].id == "43"
        assert totals(store.conn, lookup(store.conn, "c").cid).points == 70
        report = store.verify_index("c")
        assert (report["missing"], report["ghosts"], report["mismatched"]) == ([], [], [])
