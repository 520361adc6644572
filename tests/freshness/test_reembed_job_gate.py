"""The scheduled stale re-embed job in the service holds the write gate a page of
documents (or a batch of a re-read file) at a time, as the batch path does: the writes
queued behind the gate (HTTP upserts, the real-time worker) wait for one page's
embedding, not for the whole run's."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.embedders.testing import HashEmbedder
from embedops.freshness.reembed import PAGE
from embedops.freshness.stale import find_stale
from embedops.ingest.ordering import WriteGate
from embedops.jobs.kinds import KINDS, JobContext


def _slow_embedder(monkeypatch: pytest.MonkeyPatch, pause: float, gate: WriteGate
                   ) -> tuple[threading.Event, list[bool]]:
    """The test-only embedder, pausing ``pause`` s in every batch it embeds; returns an
    event set at its first batch and, per batch, whether its thread held ``gate``."""
    started, held = threading.Event(), []
    embed = HashEmbedder._embed_batch

    def slow(self: HashEmbedder, texts: list[str]) -> Any:
        held.append(gate.lock._is_owned())  # type: ignore[attr-defined]
        started.set()
        time.sleep(pause)
        return embed(self, texts)

    monkeypatch.setattr(HashEmbedder, "_embed_batch", slow)
    return started, held


def _docs(folder: Path, n: int, version: str) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"d{i:03}.txt").write_text(f"document {i} in its {version} version")


def test_the_gate_is_free_between_the_pages_of_a_model_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3 * PAGE + 5
    _docs(tmp_path / "docs", n, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        with sqlite3.connect(tmp_path / "s" / "ledger.db") as conn:  # an older model's
            conn.execute("UPDATE documents SET fingerprint = 'older-model'")
        gate = WriteGate(db.new_ledger_handle())
        started, held = _slow_embedder(monkeypatch, 0.3, gate)
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        outcome: dict[str, str] = {}
        job = threading.Thread(target=lambda: outcome.update(
            detail=KINDS["reembed-stale"](context, {"collection": "default"})))
        job.start()
        assert started.wait(30)  # (the first page is being embedded, the gate held)
        assert gate.lock.acquire(timeout=60)  # another writer of the service
        try:
            running, embedded_then = job.is_alive(), len(held)
        finally:
            gate.lock.release()
        job.join(60)
        assert running and embedded_then < len(held)  # (had between two pages)
        assert len(held) == 4 and all(held)  # (each page read and written under it)
        assert f"{n} stale; re-embedded {n} documents" in outcome["detail"]
        assert db.ledger is not None
        assert not find_stale(db.store, db.ledger, "default").stale


def test_the_job_rereads_changed_files_through_the_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _docs(tmp_path / "docs", 40, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        _docs(tmp_path / "docs", 40, "second")
        gate = WriteGate(db.new_ledger_handle())
        recorded: list[str] = []
        gate.subscribe(lambda collection, outcomes: recorded.extend(o.doc_id
                                                                     for o in outcomes))
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        detail = KINDS["reembed-stale"](context, {"collection": "default"})
        assert "re-embedded 40 documents" in detail
        assert sorted(recorded) == [f"d{i:03}.txt" for i in range(40)]  # (admitted)
        assert db.get("d007.txt").text == "document 7 in its second version"
        assert db.ledger is not None
        assert not find_stale(db.store, db.ledger, "default").stale
