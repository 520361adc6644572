"""A backfill in a process with a write lock (the service's write gate) holds that lock
for one page of points at a time, never for its reads: the other writers queued behind
the lock wait for a page's update, not for the whole collection's. Points written or
changed while the pages run are caught by a final sweep, and only then is it run."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.errors import CollectionChanged
from embedops.freshness import fields
from embedops.freshness.fields import BackfillStopped, paged_update
from embedops.ingest.ordering import WriteGate
from embedops.jobs.kinds import KINDS, JobContext
from embedops.store import open_store
from embedops.store.embedded import EmbeddedStore

N, PAGE = 500, 100
MISSING = {"field": "lang", "exists": False}


class Recorded:
    """The real store, with each call's lock state noted: for every scan page and
    every payload update, whether the calling thread held ``lock``, and each update's
    ids (None: a sweep by filter alone)."""

    def __init__(self, store: EmbeddedStore, lock: Any) -> None:
        self.store, self.lock = store, lock
        self.scans: list[bool] = []
        self.updates: list[tuple[bool, list[str] | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def scan(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for page in self.store.scan(*args, **kwargs):
            self.scans.append(self.lock._is_owned())
            yield page

    def update_payload(self, collection: str, patch: Any, ids: Any = None,
                       filter: Any = None) -> int:
        self.updates.append((self.lock._is_owned(), None if ids is None else list(ids)))
        return self.store.update_payload(collection, patch, ids=ids, filter=filter)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    vs = open_store(tmp_path / "store")
    vs.create_collection("c", 8, fingerprint="fp")
    rng = np.random.default_rng(0)
    vs.upsert("c", [f"p{i}" for i in range(N)], rng.standard_normal((N, 8)),
              [{"lang": "de"} if i % 10 == 0 else {"n": i} for i in range(N)],
              fingerprint="fp")
    yield vs
    vs.close()


def test_each_page_is_updated_under_the_lock_and_read_without_it(
        store: EmbeddedStore) -> None:
    lock = threading.RLock()
    recorded = Recorded(store, lock)
    updated = paged_update(recorded, "c", {"lang": "en"}, MISSING, lock, PAGE)  # type: ignore[arg-type]
    assert updated == N - N // 10
    assert recorded.scans and not any(recorded.scans)
    assert all(held for held, _ in recorded.updates)
    pages = [ids for _, ids in recorded.updates]
    assert None not in pages  # (no write but the pages': no sweep)
    assert all(0 < len(ids) <= PAGE for ids in pages if ids is not None)
    assert store.count("c", {"field": "lang", "eq": "en"}) == N - N // 10
    assert store.count("c", {"field": "lang", "eq": "de"}) == N // 10  # values kept


def test_a_point_changed_behind_the_pages_is_caught_by_the_final_sweep(
        store: EmbeddedStore) -> None:
    """After the first page, another writer removes the field from a point that page
    already updated: the scan has passed it, the sweep sets it."""
    lock = threading.RLock()
    recorded = Recorded(store, lock)

    def another_writer(done: int) -> None:
        if len(recorded.updates) == 1:
            store.update_payload("c", {"lang": None}, ids=["p1"])  # (merge patch: removed)

    updated = paged_update(recorded, "c", {"lang": "en"}, MISSING, lock, PAGE,  # type: ignore[arg-type]
                           on_page=another_writer)
    assert recorded.updates[-1] == (True, None)  # the sweep, under the lock
    assert updated == N - N // 10 + 1
    assert store.count("c", MISSING) == 0
    assert store.get("c", ["p1"])[0].payload == {"n": 1, "lang": "en"}


def test_a_write_between_pages_that_needs_no_update_still_brings_the_sweep(
        store: EmbeddedStore) -> None:
    """The sequence moved by a write other than the pages': the sweep runs (it finds
    nothing here), since the pages cannot tell what that write was."""
    lock = threading.RLock()
    recorded = Recorded(store, lock)

    def another_writer(done: int) -> None:
        if len(recorded.updates) == 1:
            store.upsert("c", ["late"], np.ones((1, 8), np.float32), [{"lang": "fr"}],
                         fingerprint="fp")

    paged_update(recorded, "c", {"lang": "en"}, MISSING, lock, PAGE,  # type: ignore[arg-type]
                 on_page=another_writer)
    assert recorded.updates[-1] == (True, None)


def test_a_store_that_keeps_no_change_sequence_always_sweeps(store: EmbeddedStore) -> None:
    """pgvector and Milvus report ``seq`` 0: a point written after the scan passed is
    caught by the sweep even when no page changed anything."""
    lock = threading.RLock()
    store.update_payload("c", {"lang": "de"}, filter=MISSING)  # (nothing for the pages)

    class NoSequence(Recorded):
        def get_collection(self, name: str) -> Any:
            return dataclasses.replace(self.store.get_collection(name), seq=0)

        def scan(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from super().scan(*args, **kwargs)
            self.store.upsert("c", ["late"], np.ones((1, 8), np.float32), [{}],
                              fingerprint="fp")

    recorded = NoSequence(store, lock)
    assert paged_update(recorded, "c", {"lang": "en"}, MISSING, lock,  # type: ignore[arg-type]
                        PAGE) == 1
    assert recorded.updates == [(True, None)]
    assert store.get("c", ["late"])[0].payload == {"lang": "en"}


def test_a_collection_made_again_between_pages_stops_the_update(
        store: EmbeddedStore) -> None:
    """Dropped and made again under the same name: another collection, not updated."""
    lock = threading.RLock()

    made: list[bool] = []

    def made_again(done: int) -> None:
        if not made:  # (after the first page)
            made.append(True)
            store.drop_collection("c")
            store.create_collection("c", 8, fingerprint="fp")
            store.upsert("c", ["new"], np.ones((1, 8), np.float32), [{}], fingerprint="fp")

    with pytest.raises(CollectionChanged, match="dropped"):
        paged_update(store, "c", {"lang": "en"}, MISSING, lock, PAGE, on_page=made_again)
    assert store.get("c", ["new"])[0].payload == {}


def test_an_alias_repointed_between_pages_stops_the_update(store: EmbeddedStore) -> None:
    """Asked by an alias: the pages go on reading the collection it named at the start
    (``scan``), and the update, which would write to the alias's new collection, stops."""
    store.create_collection("d", 8, fingerprint="fp")
    store.upsert("d", ["other"], np.ones((1, 8), np.float32), [{}], fingerprint="fp")
    store.create_alias("docs", "c")
    lock = threading.RLock()
    with pytest.raises(CollectionChanged, match="dropped or renamed"):
        paged_update(store, "docs", {"lang": "en"}, MISSING, lock, PAGE,
                     on_page=lambda done: store.repoint_alias("docs", "d"))
    assert store.get("d", ["other"])[0].payload == {}
    assert store.count("c", MISSING) == N - N // 10 - PAGE  # (the first page written)


def test_a_stop_between_pages_leaves_the_rest_for_later(store: EmbeddedStore) -> None:
    stop = threading.Event()
    with pytest.raises(BackfillStopped):
        paged_update(store, "c", {"lang": "en"}, MISSING, threading.RLock(), PAGE, stop,
                     on_page=lambda done: stop.set())
    assert store.count("c", MISSING) == N - N // 10 - PAGE


def test_the_scheduled_backfill_job_holds_the_gate_a_page_at_a_time(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's ``backfill`` job: pages under the gate's lock, reads without it.
    Run with no gate (``embedops jobs run``), it is one update, as the CLI's."""
    import embedops

    monkeypatch.setattr(fields, "PAGE_SIZE", PAGE)
    store.close()
    with embedops.open(tmp_path / "store", model="testing/hash-64") as db:
        gate = WriteGate(db.new_ledger_handle())
        recorded = Recorded(db.store, gate.lock)
        monkeypatch.setattr(db, "store", recorded)
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        detail = KINDS["backfill"](context, {"collection": "c", "field": "lang",
                                             "default": "en"})
        assert detail.startswith(f"{N - N // 10} points updated")
        assert recorded.scans and not any(recorded.scans)
        assert len(recorded.updates) == (N - N // 10 + PAGE - 1) // PAGE
        assert all(held and ids for held, ids in recorded.updates)

        recorded.updates.clear()
        plain = KINDS["backfill"](JobContext(db, db.new_ledger_handle()),
                                  {"collection": "c", "field": "tier", "default": "free"})
        assert plain.startswith(f"{N} points updated")
        assert [ids for _, ids in recorded.updates] == [None]
