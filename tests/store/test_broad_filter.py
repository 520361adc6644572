"""A broad filter (too many matches to score them all) whose matches are worth reading
(its oversampled searches since the last write have cost what the read does, or a
batch would) keeps the graph search within its matches' nodes: every candidate matches,
pending and shared points among the matches included, and the hits are those of an
exact filtered search but for the graph's own misses."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.store import filter_costs, open_store
from embedops.store import search as search_module
from embedops.store.filter_costs import FilterCosts
from embedops.store.hnsw_index import HnswIndex

from .storedata import exact_top_k, mixture, recall

DIM = 32


def test_a_search_within_keys_returns_only_them_pending_and_shared_ones_too() -> None:
    base = mixture(3000, DIM, seed=31)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(3000), base)
    index.add(np.array([5000, 5001, 5002]), np.repeat(base[7:8], 3, axis=0))  # shared
    later = mixture(100, DIM, seed=32)
    index.add(np.arange(4000, 4100), later, defer=True)  # pending
    keys = np.array(sorted([*range(0, 3000, 3), 4001, 4002, 5001]), dtype=np.int64)
    queries = np.concatenate([mixture(30, DIM, seed=33), later[1:3], base[7:8]])

    found, scores = index.search_within(queries, 10, keys)

    assert set(found.ravel().tolist()) <= set(keys.tolist())
    assert found[30, 0] == 4001 and found[31, 0] == 4002  # pending, scored exactly
    assert np.allclose(scores[30:32, 0], 1.0, atol=1e-5)
    assert 5001 in found[32].tolist()  # the shared node stands for its member among keys
    assert not {5000, 5002, 7} & set(found[32].tolist())
    kept = index._matched(keys, restricted=True)  # (what it holds for the shared node:
    assert kept is not None and kept.shared == {5001}  # its one member among the keys)
    rows = {int(key): row for key, row in zip(range(3000), base, strict=True)}
    rows |= {4000 + i: row for i, row in enumerate(later)} | {5001: base[7]}
    held = np.stack([rows[int(key)] for key in keys])
    truth = [{int(keys[i]) for i in row} for row in exact_top_k(held, queries[:30], 10)]
    assert recall([set(row) for row in found[:30].tolist()], truth) >= 0.95


def test_a_search_within_follows_every_change_and_refuses_keys_it_does_not_hold() -> None:
    base = mixture(2000, DIM, seed=34)
    index = HnswIndex(DIM, "cosine", "float32", {}, None)
    index.add(np.arange(2000), base)
    keys = np.arange(0, 2000, 2, dtype=np.int64)
    found = index.search_within(base[10:11], 1, keys)
    assert found is not None and found[0][0, 0] == 10
    index.remove(np.array([10]))
    assert index.search_within(base[10:11], 1, keys) is None  # 10 is held no more
    elsewhere = mixture(1, DIM, seed=99)
    index.add(np.array([10]), elsewhere)  # back, on a new node of its own
    found = index.search_within(elsewhere, 1, keys)
    assert found is not None and found[0][0, 0] == 10  # not the bitmap made before
    assert index.search_within(base[:1], 5, np.array([0, 9999])) is None
    # the same array searched among (its matches' codes) gets its own entry, not the bitmap
    among = index.search_among(base[12:13], 3, keys)
    assert among is not None and among[0][0, 0] == 12


def test_a_filters_matches_are_read_once_its_searches_have_cost_as_much(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filter_costs, "READ_S_PER_KEY", 1e-6)
    costs, where = FilterCosts(), ("bucket = ?", [3])
    assert not costs.read_due(1, 5, where, matches=100_000, queries=1)  # est. 0.1 s
    for _ in range(2):
        costs.searched(1, 5, where, 0.03, queries=1)
    assert not costs.read_due(1, 5, where, 100_000, 1)  # spent 0.06, and 0.03 to come
    costs.searched(1, 5, where, 0.03, queries=1)
    assert costs.read_due(1, 5, where, 100_000, 1)  # 0.09 and 0.03 to come: read now
    assert not costs.read_due(1, 6, where, 100_000, 1)  # a write: nothing spent since
    assert costs.read_due(1, 6, where, 100_000, 4)  # a batch that would spend 0.12
    assert not costs.read_due(2, 5, where, 100_000, 1)  # another collection's own
    assert not costs.read_due(1, 5, ("bucket = ?", [4]), 100_000, 1)  # another filter's
    assert costs.start_read(1, where) and not costs.start_read(1, where)  # one at a time
    costs.read(1, where, 0.5)  # a read measured: it replaces the estimate (0.1 s)
    assert costs.start_read(1, where)
    costs.read(1, where, None)  # (one that failed: the estimate stays)
    costs.searched(1, 7, where, 0.3, queries=1)
    assert not costs.read_due(1, 7, where, 100_000, 1)  # 0.3 and ~0.08 to come
    costs.searched(1, 6, where, 0.3, queries=1)  # (a search that read an older row)
    assert costs.read_due(1, 7, where, 100_000, 1)  # 0.6 spent since the write
    assert costs.start_read(1, where)
    costs.read(1, where, 0.5)  # read at 7: what was spent is paid for; should the keys
    assert not costs.read_due(1, 7, where, 100_000, 1)  # be dropped, they wait again


def _spied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the oversampled plan's searches (``Searcher._filtered_hnsw``), which still
    run as they are."""
    calls: list[int] = []
    real = search_module.Searcher._filtered_hnsw

    def counted(self: search_module.Searcher, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module.Searcher, "_filtered_hnsw", counted)
    return calls


@pytest.mark.parametrize(("dtype", "metric"), [("float32", "cosine"), ("int8", "cosine"),
                                               ("float32", "l2")])
def test_a_broad_filter_searched_again_is_kept_within_its_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str, metric: str) -> None:
    monkeypatch.setattr(search_module, "SELECTIVE_ROWS", 100)  # 600 matches: broad
    monkeypatch.setattr(filter_costs, "READ_S_PER_KEY", 1e-15)  # read after one search
    oversampled = _spied(monkeypatch)
    n = 6000
    vectors = mixture(n, DIM, seed=35)
    queries = mixture(20, DIM, seed=36)
    where = {"field": "bucket", "eq": 3}
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", dtype=dtype, metric=metric,
                                index_params={"exact_threshold": 0})
        store.upsert("c", [str(i) for i in range(n)], vectors,
                     [{"bucket": i % 10} for i in range(n)], fingerprint="fp")
        assert store.wait_merged()
        first = store.search("c", queries[0], k=10, filter=where)[0]
        assert len(oversampled) == 1  # the first search after a write: oversampled
        again = [store.search("c", q, k=10, filter=where)[0] for q in queries]
        batch = store.search("c", queries, k=10, filter=where)
        assert len(oversampled) == 1  # searched again, and the batch: within the matches
        exact = store.search("c", queries, k=10, filter=where, exact=True)
        store.upsert("c", ["new"], vectors[3:4], [{"bucket": 3}], fingerprint="fp")
        after_write = store.search("c", vectors[3], k=2, filter=where)[0]
    assert {h.id for h in after_write} == {"3", "new"}
    assert [h.id for h in first] == [h.id for h in again[0]]
    for hits in (*again, *batch):
        assert len(hits) == 10 and all(int(h.id) % 10 == 3 for h in hits)
    for found in (again, batch):
        overlap = np.mean([len({h.id for h in a} & {h.id for h in b}) / 10
                           for a, b in zip(found, exact, strict=True)])
        assert overlap >= 0.95
        for a, b in zip(found, exact, strict=True):  # the stored vectors' scores
            common = {h.id: h.score for h in b}
            assert all(abs(h.score - common[h.id]) < 1e-4 for h in a if h.id in common)


def test_a_read_before_the_search_waits_only_for_its_bitmap() -> None:
    costs, where = FilterCosts(), ("bucket = ?", [3])
    assert not costs.due_before_search(1, 5, where, 10, 1)  # not searched at 5 yet
    costs.searched(1, 5, where, 1.0, queries=1)
    assert costs.due_before_search(1, 5, where, 10, 1)
    assert not costs.due_before_search(1, 6, where, 10, 1)  # (a write since)
    assert costs.start_read(1, where)
    costs.read(1, where, 0.5, bitmap_to_come=True)
    costs.read_more(1, where, 0.25)  # its bitmap, made in the search
    costs.read_more(1, where, 0.25)  # made again (dropped meanwhile): not a read's cost
    costs.searched(1, 7, where, 0.7, queries=1)
    assert not costs.due_before_search(1, 7, where, 10, 0)  # 0.7 spent, 0.75 to pay
    costs.searched(1, 7, where, 0.1, queries=1)
    assert costs.due_before_search(1, 7, where, 10, 0)  # 0.8


def test_a_writer_goes_on_while_a_filters_matches_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys of a broad filter whose read is due are read before the search takes the
    index lock: a write in the meantime does not wait for the read."""
    monkeypatch.setattr(search_module, "SELECTIVE_ROWS", 100)
    monkeypatch.setattr(filter_costs, "READ_S_PER_KEY", 1e-15)  # due after one search
    armed, entered, release = threading.Event(), threading.Event(), threading.Event()
    real = search_module.Searcher._read_rowkeys

    def held(self: search_module.Searcher, row: object, where: object,
             limit: int = -1) -> object:
        if armed.is_set() and limit < 0:  # (a read of every match, not a count's)
            entered.set()
            release.wait(30)
        return real(self, row, where, limit)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module.Searcher, "_read_rowkeys", held)
    n, where = 6000, {"field": "bucket", "eq": 3}
    vectors = mixture(n, DIM, seed=37)
    found: list[list[object]] = []
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0})
        store.upsert("c", [str(i) for i in range(n)], vectors,
                     [{"bucket": i % 10} for i in range(n)], fingerprint="fp")
        assert store.wait_merged()
        store.search("c", vectors[3], k=10, filter=where)  # oversampled: the read due
        armed.set()
        searching = threading.Thread(target=lambda: found.append(
            store.search("c", vectors[13], k=10, filter=where)[0]))
        searching.start()
        assert entered.wait(10)
        started = time.monotonic()
        store.upsert("c", ["new"], vectors[23:24], [{"bucket": 3}], fingerprint="fp")
        waited = time.monotonic() - started
        release.set()
        searching.join(30)
        after = store.search("c", vectors[23], k=2, filter=where)[0]
    assert waited < 10  # (the read under the index lock held the write for 30 s)
    assert len(found) == 1 and len(found[0]) == 10
    assert all(int(h.id) % 10 == 3 for h in found[0])  # type: ignore[attr-defined]
    assert {h.id for h in after} == {"23", "new"}
