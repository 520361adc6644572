"""The VectorStore contract: every implementation must pass this suite unchanged.

It runs once per engine (``conftest.ENGINES``); the tests of how a store is reached
(open, close and reopen, read-only) run over every URL scheme."""

from __future__ import annotations

import numpy as np
import pytest

from embedops.errors import (
    AliasConflict,
    AliasNotFound,
    CollectionExists,
    CollectionNotFound,
    DimensionMismatch,
    FingerprintMismatch,
    InvalidFilter,
    InvalidVector,
    ReadOnlyStore,
    StoreError,
)
from embedops.store import VectorStore, estimate_memory
from embedops.store.catalog import DEFAULT_SEGMENT_SIZE

from .storedata import StoreFactory, mixture

DIM = 16


def _fill(store: VectorStore, name: str = "docs", n: int = 200, seed: int = 0,
          **kwargs: object) -> np.ndarray:
    store.create_collection(name, DIM, fingerprint="fp-a", model="test-model", **kwargs)
    vectors = mixture(n, DIM, seed=seed)
    payloads = [{"lang": "en" if i % 3 else "de", "year": 2000 + i % 30, "n": i}
                for i in range(n)]
    store.upsert(name, [f"p{i}" for i in range(n)], vectors, payloads, fingerprint="fp-a")
    return vectors


def test_implements_protocol(make_store_any_url: StoreFactory) -> None:
    assert isinstance(make_store_any_url(), VectorStore)


def test_create_describe_list_drop(store: VectorStore) -> None:
    info = store.create_collection("a", DIM, fingerprint="fp", metric="ip", dtype="float16",
                                   model="m", index_params={"connectivity": 8})
    assert (info.name, info.dim, info.metric, info.dtype, info.points) == ("a", DIM, "ip",
                                                                         "float16", 0)
    shown = dict(info.index_params)
    assert shown.pop("segment_size", DEFAULT_SEGMENT_SIZE) == DEFAULT_SEGMENT_SIZE
    assert shown == {"connectivity": 8} and info.fingerprint == "fp"  # (segment_size: the
    # embedded store's layout, stored with every new collection; remote stores keep theirs)
    store.create_collection("b", 4, fingerprint="fp2")
    assert [c.name for c in store.list_collections()] == ["a", "b"]
    with pytest.raises(CollectionExists):
        store.create_collection("a", DIM, fingerprint="fp")
    store.drop_collection("a")
    assert [c.name for c in store.list_collections()] == ["b"]
    with pytest.raises(CollectionNotFound):
        store.get_collection("a")


def test_upsert_same_id_is_one_point(store: VectorStore) -> None:
    vectors = _fill(store)
    store.upsert("docs", ["p5", "p5"], vectors[[7, 9]], [{"v": 1}, {"v": 2}], fingerprint="fp-a")
    assert store.count("docs") == 200
    (point,) = store.get("docs", ["p5"], with_vectors=True)
    assert point.payload == {"v": 2}
    assert point.vector is not None and np.allclose(point.vector, vectors[9], atol=1e-6)
    hits = store.search("docs", vectors[9], k=2)[0]
    assert {h.id for h in hits} == {"p5", "p9"}


def test_get_keeps_order_and_skips_missing(store: VectorStore) -> None:
    _fill(store)
    assert [p.id for p in store.get("docs", ["p3", "zzz", "p1"])] == ["p3", "p1"]
    assert store.get("docs", ["p3"])[0].vector is None


def test_search_finds_each_point_itself(store: VectorStore) -> None:
    vectors = _fill(store)
    results = store.search("docs", vectors[:20], k=3)
    assert [r[0].id for r in results] == [f"p{i}" for i in range(20)]
    assert all(r[0].score == pytest.approx(1.0, abs=1e-4) for r in results)
    assert all(r[0].score >= r[1].score >= r[2].score for r in results)
    assert results[4][0].payload == {"lang": "en", "year": 2004, "n": 4}


def test_delete_by_ids_and_filter(store: VectorStore) -> None:
    vectors = _fill(store)
    assert store.delete("docs", ids=["p1", "p2", "nope"]) == 2
    assert store.get("docs", ["p1", "p2"]) == []
    german = store.count("docs", {"field": "lang", "eq": "de"})
    assert store.delete("docs", filter={"field": "lang", "eq": "de"}) == german > 0
    assert store.count("docs") == 198 - german
    hits = store.search("docs", vectors[1], k=5, exact=True)[0]
    assert "p1" not in {h.id for h in hits}
    assert all(h.payload["lang"] == "en" for h in hits)


def test_update_payload_merges_and_keeps_vectors(store: VectorStore) -> None:
    vectors = _fill(store)
    assert store.update_payload("docs", {"tag": "x", "year": None}, ids=["p4"]) == 1
    (point,) = store.get("docs", ["p4"], with_vectors=True)
    assert point.payload == {"lang": "en", "n": 4, "tag": "x"}
    assert point.vector is not None and np.allclose(point.vector, vectors[4], atol=1e-6)
    changed = store.update_payload("docs", {"old": True}, filter="year < 2005")
    assert changed == store.count("docs", "old = true") > 0
    assert store.search("docs", vectors[4], k=1)[0][0].id == "p4"


def test_count_and_scan_cover_every_point_once(store: VectorStore) -> None:
    _fill(store, n=250)
    pages = list(store.scan("docs", page_size=60))
    assert [len(p) for p in pages] == [60, 60, 60, 60, 10]
    ids = [p.id for page in pages for p in page]
    assert sorted(ids) == sorted(f"p{i}" for i in range(250))
    filtered = [p for page in store.scan("docs", 7, filter='lang = "de"') for p in page]
    assert len(filtered) == store.count("docs", 'lang = "de"') == 84


def test_dimension_and_fingerprint_refused_naming_both(store: VectorStore) -> None:
    _fill(store)
    with pytest.raises(DimensionMismatch, match=rf"{DIM}.*\b8\b"):
        store.upsert("docs", ["x"], np.ones((1, 8), np.float32), [{}], fingerprint="fp-a")
    with pytest.raises(FingerprintMismatch, match=r"fp-a.*fp-b"):
        store.upsert("docs", ["x"], np.ones((1, DIM), np.float32), [{}], fingerprint="fp-b")
    with pytest.raises(DimensionMismatch):
        store.search("docs", np.ones(8, np.float32))
    with pytest.raises(InvalidVector):
        store.upsert("docs", ["x"], np.full((1, DIM), np.nan, np.float32), [{}], fingerprint="fp-a")
    assert store.count("docs") == 200


@pytest.mark.parametrize("bad", ["p1\x00tail", "p1\x00", "\ud800", "p\udcff1"])
def test_ids_no_store_can_hold_are_refused_and_change_nothing(store: VectorStore,
                                                               bad: str) -> None:
    """An id with a NUL character ended at the NUL inside SQLite's JSON functions, so
    ``"p1\\x00tail"`` selected point ``"p1"``; a lone surrogate has no UTF-8 form. Every
    way in refuses both with ``InvalidVector``, and no point changes."""
    _fill(store)
    before = store.get("docs", ["p1"], with_vectors=True)[0]
    row = np.ones((1, DIM), np.float32)
    calls = [
        lambda: store.upsert("docs", [bad], row, [{}], fingerprint="fp-a"),
        lambda: store.upsert("docs", ["fine", bad], np.ones((2, DIM), np.float32), None,
                             fingerprint="fp-a"),
        lambda: store.get("docs", [bad]),
        lambda: store.delete("docs", ids=[bad]),
        lambda: store.update_payload("docs", {"lang": "xx"}, ids=[bad]),
    ]
    for call in calls:
        with pytest.raises(InvalidVector, match="point id"):
            call()
    after = store.get("docs", ["p1"], with_vectors=True)[0]
    assert (after.id, after.payload) == (before.id, before.payload)
    assert np.array_equal(after.vector, before.vector)
    assert store.count("docs") == 200 and not store.get("docs", ["fine"])


def test_a_payload_with_a_lone_surrogate_is_refused(store: VectorStore) -> None:
    _fill(store)
    with pytest.raises(InvalidVector, match="payload"):
        store.upsert("docs", ["new"], np.ones((1, DIM), np.float32), [{"t": "a\udc80"}],
                     fingerprint="fp-a")
    assert store.count("docs") == 200


def test_aliases(store: VectorStore) -> None:
    vectors = _fill(store, "v1")
    _fill(store, "v2", seed=1)
    store.create_alias("live", "v1")
    assert store.resolve("live") == "v1" and store.resolve("v2") == "v2"
    assert store.search("live", vectors[0], k=1)[0][0].id == "p0"
    assert store.count("live") == 200 and store.get_collection("live").name == "v1"
    with pytest.raises(AliasConflict):
        store.create_alias("other", "live")
    with pytest.raises(AliasConflict):
        store.create_alias("v2", "v1")
    with pytest.raises(AliasConflict):
        store.create_alias("live", "v2")
    with pytest.raises(AliasConflict):
        store.drop_collection("v1")
    assert store.repoint_alias("live", "v2") == "v1"
    assert store.list_aliases() == {"live": "v2"}
    assert store.get("live", ["p0"], with_vectors=True)[0].vector is not None
    store.delete_alias("live")
    with pytest.raises(AliasNotFound):
        store.delete_alias("live")
    with pytest.raises(CollectionNotFound):
        store.resolve("live")


def test_stats_report_index_and_disk(store: VectorStore) -> None:
    _fill(store)
    merged = getattr(store, "wait_merged", None)  # tombstones are left by graph nodes only
    assert merged is None or merged()
    store.delete("docs", ids=["p0", "p1"])
    stats = store.stats("docs")
    assert stats["points"] == 198 and stats["deleted"] == 2
    assert stats["index_bytes"] > 0 and stats["disk_bytes"] > 198 * DIM * 4
    assert stats["dtype"] == "float32"
    assert {"checkpoint_seq", "seq"} <= set(stats)


def test_persistence_and_read_only(make_store_any_url: StoreFactory) -> None:
    store = make_store_any_url()
    vectors = _fill(store)
    store.delete("docs", ids=["p3"])
    store.close()
    reader = make_store_any_url(read_only=True)
    assert reader.count("docs") == 199
    assert reader.search("docs", vectors[5], k=1)[0][0].id == "p5"
    with pytest.raises(ReadOnlyStore):
        reader.upsert("docs", ["q"], vectors[:1], [{}], fingerprint="fp-a")
    with pytest.raises(ReadOnlyStore):
        reader.create_alias("a", "docs")


def test_bad_filters_are_refused(store: VectorStore) -> None:
    _fill(store)
    for bad in ({"field": "x'); DROP TABLE points; --", "eq": 1}, {"field": "a", "like": 1},
                "lang = ", {"and": []}, "lang ~ 'x'"):
        with pytest.raises(InvalidFilter):
            store.count("docs", bad)
    assert store.count("docs", {"field": "lang", "eq": "x'); DROP TABLE points; --"}) == 0
    assert store.count("docs") == 200


def test_estimate_memory_brackets_actual(store: VectorStore) -> None:
    store.create_collection("m", 64, fingerprint="fp", index_params={"exact_threshold": 0})
    store.upsert("m", [str(i) for i in range(3000)], mixture(3000, 64), None, fingerprint="fp")
    merged = getattr(store, "wait_merged", None)  # the estimate is of the graph
    assert merged is None or merged()
    actual = store.stats("m")["index_bytes"]
    estimate = estimate_memory(3000, 64, "float32")
    assert 0.5 * actual <= estimate <= 2.0 * actual
    sizes = [estimate_memory(10**6, 384, dt) for dt in ("int8", "float16", "float32")]
    assert sizes == sorted(sizes) and sizes[0] < 0.5 * sizes[2]


def test_search_refuses_a_depth_that_is_not_a_positive_integer(store: VectorStore) -> None:
    """``ef`` is None (the collection's own depth) or a positive integer; anything else
    is refused with a clear error, and nothing is searched."""
    _fill(store)
    query = np.ones(DIM, dtype=np.float32)
    for bad in (0, -3, 1.5, "64", True, [8]):
        with pytest.raises(StoreError, match="ef must be a positive integer"):
            store.search("docs", query, k=3, ef=bad)  # type: ignore[arg-type]
    assert len(store.search("docs", query, k=3, ef=8)[0]) == 3
    assert len(store.search("docs", query, k=3, ef=None)[0]) == 3
