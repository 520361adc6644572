"""Stored vectors read in one result row (``store/vector_reads.py``), and the int8
search that ranks its candidates with them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store, vector_reads
from embedops.store.vector_reads import IN_LIST_MAX, stored_vectors

from .storedata import mixture


def _table(vectors: np.ndarray, keys: list[int]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE vectors (rowkey INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
    conn.executemany("INSERT INTO vectors VALUES (?, ?)",
                     [(key, row.tobytes()) for key, row in zip(keys, vectors, strict=True)])
    return conn


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("wanted", [5, IN_LIST_MAX + 20])
@pytest.mark.parametrize("chunk_rows", [0, 3, IN_LIST_MAX + 5])  # (json_each chunked)
def test_vectors_come_back_whole_and_keyed(dtype: str, wanted: int, chunk_rows: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if chunk_rows:  # (a statement reads this many vectors at most)
        itemsize = 4 if dtype == "float32" else 2
        monkeypatch.setattr(vector_reads, "CHUNK_BYTES", chunk_rows * 16 * itemsize)
    rng = np.random.default_rng(7)
    stored = rng.standard_normal((300, 16)).astype("<f4" if dtype == "float32" else "<f2")
    stored[::3, :4] = 0  # (zero bytes inside a row: a text concatenation must keep them)
    stored[1] = np.frombuffer(bytes(range(128, 192)) if dtype == "float32"
                              else bytes(range(128, 160)), dtype=stored.dtype)  # (no UTF-8)
    keys = [int(k) for k in rng.choice(10_000, 300, replace=False)]
    conn = _table(stored, keys)
    asked = [keys[1], *rng.choice(keys, wanted - 3, replace=False).tolist(), 10_001, 10_002]
    asked = list(dict.fromkeys(int(k) for k in asked))  # (distinct; two keys missing)
    found = stored_vectors(conn, asked, 16, dtype)
    assert found is not None
    where, matrix = found
    assert matrix.dtype == np.float32
    assert sorted(where) == sorted(k for k in asked if k in keys)
    for key, row in where.items():
        np.testing.assert_array_equal(matrix[row], stored[keys.index(key)].astype(np.float32))


def test_no_keys_or_no_rows_give_an_empty_matrix() -> None:
    conn = _table(np.ones((2, 4), dtype="<f4"), [1, 2])
    for asked in ([], [5, 6]):
        where, matrix = stored_vectors(conn, asked, 4, "float32")
        assert where == {} and matrix.shape == (0, 4)


def test_a_vector_of_the_wrong_size_is_reported() -> None:
    conn = _table(np.ones((3, 4), dtype="<f4"), [1, 2, 3])
    conn.execute("UPDATE vectors SET vector = x'0000' WHERE rowkey = 2")
    assert stored_vectors(conn, [1, 2, 3], 4, "float32") is None
    assert stored_vectors(conn, [1, 3], 4, "float32") is not None
    # one short and one long: the total is right, the rows are not
    conn.execute("UPDATE vectors SET vector = zeroblob(8) WHERE rowkey = 2")
    conn.execute("UPDATE vectors SET vector = zeroblob(24) WHERE rowkey = 3")
    assert stored_vectors(conn, [2, 3], 4, "float32") is None


def test_a_key_asked_twice_is_read_once_and_later_rows_stay_aligned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_reads, "CHUNK_BYTES", 2 * 4 * 4)  # (two vectors a statement)
    stored = np.arange(40, dtype="<f4").reshape(10, 4)
    conn = _table(stored, list(range(10)))
    where, matrix = stored_vectors(conn, [5, 1, 2, 5, 3, 7], 4, "float32")
    assert sorted(where) == [1, 2, 3, 5, 7] and len(matrix) == 5
    for key, row in where.items():
        np.testing.assert_array_equal(matrix[row], stored[key])


def test_a_vector_stored_as_text_is_reported() -> None:
    conn = _table(np.ones((3, 4), dtype="<f4"), [1, 2, 3])
    # 16 characters, 17 bytes in UTF-8: length() counts 16, group_concat joins 17
    conn.execute("UPDATE vectors SET vector = 'abcdefghijklmno\u00e9' WHERE rowkey = 2")
    (kind, chars) = conn.execute(
        "SELECT typeof(vector), length(vector) FROM vectors WHERE rowkey = 2").fetchone()
    assert (kind, chars) == ("text", 16)
    assert stored_vectors(conn, [1, 2, 3], 4, "float32") is None
    conn.execute("UPDATE vectors SET vector = 'abcdefghijklmnop' WHERE rowkey = 2")
    assert stored_vectors(conn, [1, 2, 3], 4, "float32") is None  # (16 bytes, not a BLOB)


def _int8_store(path: Path, n: int = 3000) -> tuple[object, np.ndarray, np.ndarray]:
    both = mixture(n + 20, 32, seed=3)
    points, queries = both[:n], both[n:]
    store = open_store(path)
    store.create_collection("c", 32, fingerprint="f", dtype="int8",
                            index_params={"exact_threshold": 0})
    store.upsert("c", [f"p{i}" for i in range(n)], points, [{"i": i} for i in range(n)],
                 fingerprint="f")
    store.wait_merged(60)
    return store, points, queries


def _exact(points: np.ndarray, query: np.ndarray) -> np.ndarray:
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    return unit @ (query / np.linalg.norm(query))


def test_int8_hits_carry_their_float_scores_best_first(tmp_path: Path) -> None:
    store, points, queries = _int8_store(tmp_path / "s")
    try:
        for query in queries:
            hits = store.search("c", query, 10)[0]
            assert len(hits) == 10
            exact = _exact(points, query)
            got = [h.score for h in hits]
            assert got == sorted(got, reverse=True)
            for hit in hits:
                assert hit.payload == {"i": int(hit.id[1:])}
                assert hit.score == pytest.approx(exact[int(hit.id[1:])], abs=1e-5)
            best = set(np.argsort(-exact)[:10].tolist())
            assert len(best & {int(h.id[1:]) for h in hits}) >= 8
    finally:
        store.close()


@pytest.mark.parametrize("spoilt", [b"\x00", "x" * 128],
                         ids=["one-byte-blob", "text-of-the-right-length"])
def test_a_corrupt_vector_leaves_its_point_out_and_the_search_answers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, spoilt: bytes | str) -> None:
    store, _, queries = _int8_store(tmp_path / "s")
    try:
        query = queries[0]
        first = store.search("c", query, 10)[0]
        victim = first[0].id
        (rowkey,) = store.conn.execute("SELECT rowkey FROM points WHERE id = ?",
                                       (victim,)).fetchone()
        with store.conn:
            store.conn.execute("UPDATE vectors SET vector = ? WHERE rowkey = ?",
                               (spoilt, rowkey))
        hits = store.search("c", query, 10)[0]
        assert victim not in [h.id for h in hits]
        assert [h.id for h in hits[:9]] == [h.id for h in first[1:10]]
        assert "not 128 bytes long" in caplog.text and str(rowkey) in caplog.text
        store.search("c", query, 10)
        assert caplog.text.count("not 128 bytes long") == 1  # (once per collection)
    finally:
        store.close()


def test_a_point_gone_from_sqlite_is_replaced_by_the_next_candidate(tmp_path: Path) -> None:
    store, _, queries = _int8_store(tmp_path / "s")
    try:
        store.hit_cache_bytes = 0  # (ids and payloads read from SQLite each search)
        query = queries[1]
        first = store.search("c", query, 10)[0]
        # the best point's row deleted behind the index's back, as a delete committed
        # but not yet applied to the graph looks to a search
        with store.conn:
            store.conn.execute("DELETE FROM points WHERE id = ?", (first[0].id,))
        hits = store.search("c", query, 10)[0]
        assert len(hits) == 10
        assert [h.id for h in hits[:9]] == [h.id for h in first[1:]]
        assert first[0].id not in [h.id for h in hits]
    finally:
        store.close()


def test_a_batch_whose_lists_differ_in_length_answers_with_the_cache_cold(
        tmp_path: Path) -> None:
    store, _, queries = _int8_store(tmp_path / "s")
    try:
        store.hit_cache_bytes = 0
        gone = [h.id for h in store.search("c", queries[0], 40)[0]]
        with store.conn:  # (the first query's candidates have no vectors to rank them by)
            store.conn.execute(
                "DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM points WHERE id IN "
                f"({','.join('?' * len(gone))}))", gone)
        first, second = store.search("c", queries[:2], 10)
        assert len(first) == len(second) == 10
        assert not {h.id for h in first + second} & set(gone)
    finally:
        store.close()
