"""The write-ahead log is copied into the database file by a background thread
(``embedops.store.wal``), not inside the commits that grow it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np

from embedops.store import open_store
from embedops.store.wal import BACKSTOP_PAGES

DIM = 64


def test_the_log_reaches_the_database_file_in_the_background(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.create_collection("c", DIM, fingerprint="fp")
    (pages,) = store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == BACKSTOP_PAGES  # commits do not checkpoint 4 MB logs themselves
    db = tmp_path / "s" / "store.sqlite"
    before = db.stat().st_size
    data = np.random.default_rng(0).standard_normal((3000, DIM)).astype(np.float32)
    for start in range(0, 3000, 1000):
        store.upsert("c", [str(i) for i in range(start, start + 1000)],
                     data[start:start + 1000], None, fingerprint="fp")
    assert store._wal is not None
    deadline = time.monotonic() + 30
    # (the file grows while a checkpoint copies pages; its count rises once it returns)
    while ((db.stat().st_size - before < data.nbytes or store._wal.checkpoints < 1)
           and time.monotonic() < deadline):
        time.sleep(0.05)
    # the vectors are in the database file although no commit checkpointed
    assert db.stat().st_size - before >= data.nbytes
    assert store._wal.checkpoints >= 1
    store.close()
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM points").fetchone()
    assert n == 3000


def test_a_read_only_handle_starts_no_checkpointer(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp")
    reader = open_store(tmp_path / "s", read_only=True)
    assert reader._wal is None
    reader.close()
