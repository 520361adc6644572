"""Several serving processes on one ledger drain one outbox: a document's queued writes
are applied by one process at a time (a claim in the ledger), so the newest accepted
write wins whichever replica accepted it, and no write is applied twice.

The two workers here are what two replicas run: separate ledger handles and write gates
on one ledger file and one store. Worker A is held inside its store write while worker
B sees a newer write to the same document."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.ingest.ordering import WriteGate
from embedops.ingest.realtime import RealtimeWorker
from embedops.ingest.targets import EmbedderPool
from embedops.ledger import Ledger
from embedops.metrics import Metrics
from embedops.store import EmbeddedStore, open_store


class HeldStore:
    """The real store, whose next ``upsert`` waits until ``release`` is set."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def upsert(self, *args: Any, **kwargs: Any) -> int:
        self.entered.set()
        assert self.release.wait(30), "the held write was never released"
        return self._store.upsert(*args, **kwargs)


@pytest.fixture
def replicas(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(store=str(tmp_path / "store"), realtime_max_wait_ms=0)
    store = open_store(settings.store)
    embedder = load_embedder("testing/hash-64", Path("."))
    store.create_collection("c", embedder.info.dim, fingerprint=embedder.info.fingerprint,
                            model=embedder.info.name)
    held = HeldStore(store)
    pool = EmbedderPool(settings)
    ledgers = [Ledger(tmp_path / "store") for _ in range(3)]
    workers = [RealtimeWorker(s, ledger, WriteGate(ledger), pool, settings, Metrics())
               for s, ledger in zip((held, store), ledgers, strict=False)]
    yield held, store, ledgers[2], workers
    for ledger in ledgers:
        ledger.close()
    store.close()


def test_a_newer_write_waits_for_the_replica_applying_an_older_one(replicas) -> None:  # type: ignore[no-untyped-def]
    held, store, ledger, (a, b) = replicas
    (first,) = ledger.enqueue("c", [("x", "put", {"text": "the first version"})])
    applied: list[int] = []
    thread = threading.Thread(target=lambda: applied.append(a.drain_once()))
    thread.start()
    assert held.entered.wait(30)  # replica A is writing version 1 now
    (second,) = ledger.enqueue("c", [("x", "put", {"text": "the second version"})])
    assert b.drain_once() == 0  # replica B leaves x to A instead of racing it
    held.release.set()
    thread.join(30)
    assert applied == [1]
    assert b.drain_once() == 1  # now B applies the newer write
    stored = ledger.stored("c", "x")
    assert stored is not None and stored.text == "the second version"
    (point,) = store.get("c", ["x#0"])
    assert "second" in point.payload["text"]
    status = ledger.version_status("c", "x")
    assert status is not None and (status["latest_seq"], status["applied_seq"]) == (
        second, second) and second > first
    assert ledger.queue_stats()[0] == 0
    assert a.claims.holders("c") == {}  # both replicas let go of x


def test_a_write_another_replica_applied_is_not_applied_again(replicas) -> None:  # type: ignore[no-untyped-def]
    _, store, ledger, (a, b) = replicas
    ledger.enqueue("c", [("y", "put", {"text": "only once"})])
    stale = a.ledger.queued_documents(10)  # A read the queue, then B applied it all
    assert b.drain_once() == 1
    calls: list[int] = []
    real = store.upsert

    def counting(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return real(*args, **kwargs)

    store.upsert = counting  # type: ignore[method-assign]
    a.ledger.queued_documents = lambda limit: stale  # type: ignore[method-assign]
    assert a.drain_once() == 0 and calls == []  # re-read under the claim: nothing left
    assert store.count("c") == 1
