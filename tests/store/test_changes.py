"""The changed-points cursor (``embedops.store.changes``) returns every point changed
after a sequence exactly once, whatever the page size, and a page costs its own rows
only: reading a tail page by page costs about what reading it at once does (paging by
row key made SQLite sort the rest of the tail for every page)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store, schema
from embedops.store.changes import ChangedRows

DIM = 4


def _store_with_history(path: Path) -> list[tuple[int, int]]:
    """Upserts in batches of several sizes, re-upserts and deletes; returns the
    (rowkey, seq) of every live point."""
    rng = np.random.default_rng(0)
    with open_store(path) as store:
        store.create_collection("c", DIM, fingerprint="fp")
        store.create_collection("other", DIM, fingerprint="fp")
        start = 0
        for size in (1, 300, 7, 1200, 50):
            ids = [str(i) for i in range(start, start + size)]
            store.upsert("c", ids, rng.standard_normal((size, DIM)), None, fingerprint="fp")
            store.upsert("other", ids, rng.standard_normal((size, DIM)), None,
                         fingerprint="fp")
            start += size
        store.upsert("c", ["5", "400", "2"], rng.standard_normal((3, DIM)), None,
                     fingerprint="fp")
        store.delete("c", ids=["6", "1000"])
    conn = sqlite3.connect(path / "store.sqlite")
    (cid,) = conn.execute("SELECT cid FROM collections WHERE name = 'c'").fetchone()
    rows = conn.execute("SELECT rowkey, seq FROM points WHERE cid = ?", (cid,)).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("page", [1, 7, 299, 5000])
def test_every_changed_point_comes_once_in_order(tmp_path: Path, page: int) -> None:
    live = _store_with_history(tmp_path / "s")
    conn = sqlite3.connect(tmp_path / "s" / "store.sqlite")
    (cid,) = conn.execute("SELECT cid FROM collections WHERE name = 'c'").fetchone()
    for since in sorted({0, *(seq for _, seq in live), 10_000}):
        changed = ChangedRows(conn, cid, since)
        got: list[tuple[int, int]] = []
        while rows := changed.page(page):
            assert len(rows) <= page
            got += [(key, seq) for key, _, seq in rows]
        # (everything comes in row key order: the order points were first written)
        want = sorted(((key, seq) for key, seq in live if seq > since),
                      key=lambda r: r if since == 0 else (r[1], r[0]))
        assert got == want, f"since {since}, pages of {page}"
    conn.close()


def _vm_steps(conn: sqlite3.Connection, read: callable) -> int:
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 100)
    read()
    conn.set_progress_handler(None, 0)
    return steps[0] * 100


def test_reading_a_tail_in_pages_costs_about_what_reading_it_at_once_does(
        tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    schema.migrate(conn)  # (the store's tables: points, and their vectors apart)
    # one large commit (one sequence) and a few smaller ones after it (written in one
    # transaction: the connection commits each statement otherwise, a sync per row)
    with conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO points (cid, id, seq) VALUES (1, ?, ?)",
                         ((str(i), 2 if i < 20_000 else 3 + i % 5) for i in range(24_000)))
        conn.execute("INSERT INTO vectors (rowkey, vector) SELECT rowkey, ? FROM points",
                     (b"v" * 64,))

    def drain(since: int, page: int) -> int:
        changed, total = ChangedRows(conn, 1, since), 0
        while rows := changed.page(page):
            total += len(rows)
        return total

    for since in (0, 1):  # (everything, along the primary key; a tail, along (cid, seq))
        at_once = _vm_steps(conn, lambda s=since: drain(s, 100_000))
        in_pages = _vm_steps(conn, lambda s=since: drain(s, 200))
        assert drain(since, 200) == drain(since, 100_000) == 24_000
        assert in_pages < 2 * at_once, (since, in_pages, at_once)
    conn.close()
