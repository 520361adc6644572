"""A filtered scan pages through the collection in row-key order by walking the primary
key, unless a payload index serves the filter: the planner's other choice, the
``(cid, seq)`` index, sorted the rest of the collection for every page (a backfill's
scan of 200,000 points took 7.8 s instead of 0.9 s). The vectors' table is read only
when vectors are asked for. Either way, every matching point comes once, in order,
with its payload and (when asked) its vector."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.store import open_store
from embedops.store.embedded import EmbeddedStore

N = 300


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """Two collections whose rows interleave (written in turns), ``a`` with a payload
    index on ``lang``."""
    vs = open_store(tmp_path / "store")
    vs.create_collection("a", 8, fingerprint="fp", payload_indexes=["lang"])
    vs.create_collection("b", 8, fingerprint="fp")
    rng = np.random.default_rng(0)
    for at in range(0, N, 50):
        for name in ("a", "b"):
            vs.upsert(name, [f"{name}{i}" for i in range(at, at + 50)],
                      rng.standard_normal((50, 8)).astype("float32"),
                      [{"lang": "de"} if i % 3 == 0 else {"n": i} for i in range(at, at + 50)],
                      fingerprint="fp")
    yield vs
    vs.close()


def _statements(store: EmbeddedStore) -> list[str]:
    """The SQL every connection of ``store`` runs from now on, parameters inlined."""
    seen: list[str] = []
    for conn in (store.conn, *(reader.conn for reader in store._readers.idle)):
        conn.set_trace_callback(seen.append)
    return seen


def _plans(path: Path, statements: list[str]) -> list[str]:
    """The query plan of each page's statement, read on a connection of its own."""
    with sqlite3.connect(f"file:{path / 'store.sqlite'}?mode=ro", uri=True) as conn:
        return [" / ".join(step[3] for step in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                for sql in statements if "ORDER BY rowkey" in sql]


@pytest.mark.parametrize("with_vectors", [False, True])
@pytest.mark.parametrize("name", ["a", "b"])
def test_a_scan_by_a_filter_no_index_serves_walks_the_primary_key(
        store: EmbeddedStore, tmp_path: Path, name: str, with_vectors: bool) -> None:
    list(store.scan(name))  # (a read connection, idle in the pool)
    seen = _statements(store)
    pages = list(store.scan(name, 40, filter={"field": "lang", "exists": False},
                            with_vectors=with_vectors))
    plans = _plans(tmp_path / "store", seen)
    assert len(plans) == len(pages) + 1  # (the last, empty page ends the scan)
    assert all("TEMP B-TREE" not in plan and "PRIMARY KEY (rowid>?)" in plan
               for plan in plans), plans
    assert all(("vectors" in sql) == with_vectors for sql in seen if "ORDER BY" in sql)
    _check(store, name, pages, lambda i: i % 3 != 0, with_vectors)


@pytest.mark.parametrize("with_vectors", [False, True])
def test_a_scan_by_an_indexed_field_leaves_the_plan_to_sqlite(
        store: EmbeddedStore, with_vectors: bool) -> None:
    list(store.scan("a"))
    seen = _statements(store)
    pages = list(store.scan("a", 40, filter={"field": "lang", "eq": "de"},
                            with_vectors=with_vectors))
    assert not any("NOT INDEXED" in sql for sql in seen if "ORDER BY rowkey" in sql)
    _check(store, "a", pages, lambda i: i % 3 == 0, with_vectors)


def _check(store: EmbeddedStore, name: str, pages: list[Any], matches: Any,
           with_vectors: bool) -> None:
    points = [p for page in pages for p in page]
    assert [p.id for p in points] == [f"{name}{i}" for i in range(N) if matches(i)]
    stored = {p.id: p for page in store.scan(name, with_vectors=True) for p in page}
    for point in points:
        assert point.payload == stored[point.id].payload
        if with_vectors:
            assert np.array_equal(point.vector, stored[point.id].vector)
        else:
            assert point.vector is None
