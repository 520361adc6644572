"""A scan pages through the collection in row-key order by walking the primary key,
unless a payload index is searched by the filter's value or the collection is small
beside the table: SQLite's other choice, an index on ``cid``, sorted the rest of the
collection for every page (a backfill's scan of 200,000 points took 7.8 s instead of
0.9 s). The vectors' table is read only when vectors are asked for. Either way, every
matching point comes once, in order, with its payload and (when asked) its vector."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.errors import CollectionChanged
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


def test_a_filter_on_an_indexed_field_its_index_cannot_serve_walks_the_primary_key(
        store: EmbeddedStore, tmp_path: Path) -> None:
    list(store.scan("a"))
    seen = _statements(store)
    pages = list(store.scan("a", 40, filter={"field": "lang", "ne": "de"}))
    plans = _plans(tmp_path / "store", seen)
    assert plans and all("PRIMARY KEY (rowid>?)" in plan for plan in plans), plans
    _check(store, "a", pages, lambda i: i % 3 != 0, False)


def test_a_small_collection_beside_a_large_one_keeps_the_plan_on_its_own_rows(
        tmp_path: Path) -> None:
    """Walking the key would pass every row of the large collection; reading the small
    one's rows through the ``cid`` index and sorting them costs less."""
    vs = open_store(tmp_path / "store")
    try:
        vs.create_collection("big", 8, fingerprint="fp")
        vs.create_collection("small", 8, fingerprint="fp")
        rng = np.random.default_rng(1)
        vs.upsert("small", [f"small{i}" for i in range(30)],
                  rng.standard_normal((30, 8)).astype("float32"),
                  [{"n": i} for i in range(30)], fingerprint="fp")
        vs.upsert("big", [f"big{i}" for i in range(3000)],
                  rng.standard_normal((3000, 8)).astype("float32"),
                  [{"n": i} for i in range(3000)], fingerprint="fp")
        list(vs.scan("small"))
        seen = _statements(vs)
        pages = list(vs.scan("small", 10, filter={"field": "lang", "exists": False}))
        pages += list(vs.scan("small", 10))
        assert not any("NOT INDEXED" in sql for sql in seen if "ORDER BY rowkey" in sql)
        assert [p.id for page in pages for p in page] == [f"small{i}" for i in range(30)] * 2
        seen.clear()
        assert sum(len(page) for page in vs.scan("big", 500)) == 3000
        assert all("NOT INDEXED" in sql for sql in seen if "ORDER BY rowkey" in sql)
    finally:
        vs.close()


def test_a_broad_range_on_an_indexed_field_walks_the_primary_key(tmp_path: Path) -> None:
    """Searched by a range, the index reads every match for every page and sorts
    those left: for matches that fill the table, the walk costs less."""
    vs = open_store(tmp_path / "store")
    try:
        vs.create_collection("c", 8, fingerprint="fp", payload_indexes=["n"])
        vs.upsert("c", [f"p{i}" for i in range(3000)],
                  np.random.default_rng(2).standard_normal((3000, 8)).astype("float32"),
                  [{"n": i} for i in range(3000)], fingerprint="fp")
        list(vs.scan("c"))
        seen = _statements(vs)
        broad = [p.id for page in vs.scan("c", 100, filter={"field": "n", "gte": 0})
                 for p in page]
        assert broad == [f"p{i}" for i in range(3000)]
        assert all("NOT INDEXED" in sql for sql in seen if "ORDER BY rowkey" in sql)
        seen.clear()
        narrow = [p.id for page in vs.scan("c", 100, filter={"field": "n", "gte": 2900})
                  for p in page]
        assert narrow == [f"p{i}" for i in range(2900, 3000)]
        assert not any("NOT INDEXED" in sql for sql in seen if "ORDER BY rowkey" in sql)
    finally:
        vs.close()


def test_a_collection_made_again_during_a_scan_stops_it(store: EmbeddedStore) -> None:
    pages = store.scan("b", 40)
    assert len(next(pages)) == 40
    store.drop_collection("b")
    store.create_collection("b", 8, fingerprint="fp")
    store.upsert("b", ["new"], np.ones((1, 8), np.float32), [{}], fingerprint="fp")
    with pytest.raises(CollectionChanged, match="names another collection"):
        next(pages)


def test_a_catalog_index_on_no_field_name_does_not_stop_a_scan(
        store: EmbeddedStore, tmp_path: Path) -> None:
    """A damaged catalog row (``test_vectors_apart``: the store opens) scans as before."""
    store.conn.execute("UPDATE collections SET payload_indexes = ? WHERE name = 'a'",
                       ('["lang", "not a field!"]',))
    store.close()
    with open_store(tmp_path / "store") as reopened:
        assert sum(len(page) for page in reopened.scan("a", 70)) == N
        assert sum(len(page) for page in reopened.scan(
            "a", 70, filter={"field": "lang", "exists": False})) == N - N // 3


@pytest.mark.parametrize("with_vectors", [False, True])
@pytest.mark.parametrize("by", [{"eq": "de"}, {"gte": "d"}])
def test_a_scan_by_an_indexed_field_leaves_the_plan_to_sqlite(
        store: EmbeddedStore, tmp_path: Path, with_vectors: bool, by: dict[str, str]
        ) -> None:
    """Searched by the filter's value, the index reads the matches alone (a range's
    then sorted, an equality's already in row-key order)."""
    list(store.scan("a"))
    seen = _statements(store)
    pages = list(store.scan("a", 40, filter={"field": "lang", **by},
                            with_vectors=with_vectors))
    plans = _plans(tmp_path / "store", seen)
    assert plans and all("<expr>" in plan for plan in plans), plans
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
