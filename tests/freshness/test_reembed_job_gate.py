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
from embedops.errors import CollectionChanged
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


def _older_model(store: Path) -> None:
    """Every document of the store's ledger marked as embedded by another model."""
    with sqlite3.connect(store / "ledger.db") as conn:
        conn.execute("UPDATE documents SET fingerprint = 'older-model'")


def _job_started(db: Any, store: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[WriteGate, list[bool], threading.Thread, dict[str, str]]:
    """The reembed-stale job running in a thread of its own, as the service runs it,
    its first page being embedded (slowly) with the gate held: the gate, whether each
    batch was embedded with the gate held, the thread and its outcome once it ends."""
    _older_model(store)
    gate = WriteGate(db.new_ledger_handle())
    started, held = _slow_embedder(monkeypatch, 0.3, gate)
    context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
    outcome: dict[str, str] = {}
    job = threading.Thread(target=lambda: outcome.update(
        detail=KINDS["reembed-stale"](context, {"collection": "default"})))
    job.start()
    assert started.wait(30)
    return gate, held, job, outcome


def test_the_gate_is_free_between_the_pages_of_a_model_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3 * PAGE + 5
    _docs(tmp_path / "docs", n, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        gate, held, job, outcome = _job_started(db, tmp_path / "s", monkeypatch)
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


def test_a_document_deleted_between_pages_is_skipped_not_dead_lettered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 2 * PAGE + 5
    _docs(tmp_path / "docs", n, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        gate, held, job, outcome = _job_started(db, tmp_path / "s", monkeypatch)
        with gate.lock:  # (between two pages: the API deletes a document of a later one)
            assert len(held) < 3
            assert db.delete_documents([f"d{n - 1:03}.txt"]) == 1
        job.join(60)
        assert f"{n} stale; re-embedded {n - 1} documents" in outcome["detail"]
        assert db.ledger is not None and db.ledger.dead_letters("default") == []


def test_a_page_claimed_before_a_rename_behind_an_alias_is_embedded_under_the_new_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``migrate start`` on a plain collection renames it and puts an alias of its old
    name in front of it: a page claimed under the old name is claimed again under the
    new one, and its documents are embedded there (not dead-lettered under the alias)."""
    from embedops.freshness import reembed
    from embedops.migrate import Migrations

    _docs(tmp_path / "docs", 4, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        _older_model(tmp_path / "s")
        gate = WriteGate(db.new_ledger_handle())
        migrations = Migrations(db, write_lock=gate.lock)
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        claims = reembed.Claims

        class RenamedOnFirstClaim(claims):  # type: ignore[misc,valid-type]
            renamed = False

            def holding(self, collection: str, ids: list[str]) -> Any:
                if not RenamedOnFirstClaim.renamed:  # (another writer, the gate free)
                    RenamedOnFirstClaim.renamed = True
                    migrations.start("default", "testing/hash-e5-32")
                return super().holding(collection, ids)

        embed_page = reembed._reembed_page
        claimed_there: list[bool] = []  # (each page claimed under the name written to)

        def checked(store: Any, ledger: Any, targets: Any, page: list[str],
                    *rest: Any) -> None:
            holders = claims(ledger, 60.0).holders(targets[0].name)
            claimed_there.append(bool(page) and set(page) <= set(holders))
            embed_page(store, ledger, targets, page, *rest)

        monkeypatch.setattr(reembed, "Claims", RenamedOnFirstClaim)
        monkeypatch.setattr(reembed, "_reembed_page", checked)
        detail = KINDS["reembed-stale"](context, {"collection": "default"})
        assert RenamedOnFirstClaim.renamed and "re-embedded 4 documents" in detail
        assert claimed_there and all(claimed_there)
        live = db.resolve("default")
        assert live != "default"  # (renamed behind the alias)
        assert db.ledger is not None and db.ledger.dead_letters("default") == []
        current = db.store.get_collection(live).fingerprint
        assert {r.fingerprint for r in db.ledger.documents(live).values()} == {current}


def test_a_batch_run_stops_when_its_collection_is_dropped_and_made_again(
        tmp_path: Path) -> None:
    """A batch run of the service resolved its collection at its start; if another
    writer drops it (and makes a new one of the same name) before the run's first
    flush gets the gate, the run stops instead of writing into the new collection. A
    swap of the alias the run was given is no change: it writes on."""
    from embedops.ingest.batch import BatchIngest, IngestOptions

    _docs(tmp_path / "old", 5, "first")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "n0.txt").write_text("the new corpus")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "old"])
        _docs(tmp_path / "old", 5, "second")
        assert db.ledger is not None
        gate = WriteGate(db.new_ledger_handle())
        run = BatchIngest(db.store, db.ledger, db.settings,
                          IngestOptions(collection="default"), gate=gate)
        with gate.lock:  # (DELETE /collections/default, then a new "default")
            db.drop_collection("default")
        db.ingest([tmp_path / "new"])
        with pytest.raises(CollectionChanged, match="dropped or renamed"):
            run.run([tmp_path / "old"])
        assert sorted(db.ledger.documents("default")) == ["n0.txt"]
        assert db.store.get_collection("default").points == 1

        db.store.create_alias("docs", "default")
        run = BatchIngest(db.store, db.ledger, db.settings,
                          IngestOptions(collection="docs"), gate=gate)
        db.ingest([tmp_path / "new"], collection="other")
        db.store.repoint_alias("docs", "other")
        assert run.run([tmp_path / "old"]).documents_new == 5  # (into "default")
        assert len(db.ledger.documents("default")) == 6


def test_a_rename_behind_an_alias_during_the_reread_reads_the_files_again_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedops.ingest.batch import BatchIngest
    from embedops.migrate import Migrations

    _docs(tmp_path / "docs", 5, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        _docs(tmp_path / "docs", 5, "second")
        gate = WriteGate(db.new_ledger_handle())
        migrations = Migrations(db, write_lock=gate.lock)
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        flush, renamed = BatchIngest._flush, []

        def renamed_before_the_first_flush(self: BatchIngest, batch: Any) -> None:
            if not renamed:  # (another writer of the service, the gate free)
                renamed.append(migrations.start("default", "testing/hash-e5-32"))
            flush(self, batch)

        monkeypatch.setattr(BatchIngest, "_flush", renamed_before_the_first_flush)
        detail = KINDS["reembed-stale"](context, {"collection": "default"})
        assert renamed and "5 stale; re-embedded 5 documents" in detail
        live = db.resolve("default")
        assert live != "default"
        assert db.ledger is not None
        assert db.ledger.stored(live, "d003.txt").text == "document 3 in its second version"
        assert not find_stale(db.store, db.ledger, live).stale


def test_documents_reread_before_a_rename_are_counted_with_those_reread_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files ingested with two sets of options are read again in two runs. A rename
    behind the alias before the second run's first write sends the job through the
    files once more, where the first run's documents are unchanged by then: the job
    still reports every document it re-embedded, the first attempt's included."""
    from embedops.ingest.batch import BatchIngest
    from embedops.migrate import Migrations

    _docs(tmp_path / "a", 3, "first")
    (tmp_path / "b").mkdir()
    _docs(tmp_path / "b" / "b", 2, "first")  # (ids b/d000.txt ...: not a's)
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "a"])
        db.ingest([tmp_path / "b"], title_field="heading")  # (other options: a 2nd run)
        _docs(tmp_path / "a", 3, "second")
        _docs(tmp_path / "b" / "b", 2, "second")
        gate = WriteGate(db.new_ledger_handle())
        migrations = Migrations(db, write_lock=gate.lock)
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
        flush, flushes, renamed = BatchIngest._flush, [], []

        def renamed_before_the_second_run_writes(self: BatchIngest, batch: Any) -> None:
            flushes.append(len(batch))
            if len(flushes) == 2 and not renamed:  # (the first run has committed)
                renamed.append(migrations.start("default", "testing/hash-e5-32"))
            flush(self, batch)

        monkeypatch.setattr(BatchIngest, "_flush", renamed_before_the_second_run_writes)
        detail = KINDS["reembed-stale"](context, {"collection": "default"})
        assert renamed and flushes[:2] == [3, 2]
        assert "5 stale; re-embedded 5 documents" in detail
        live = db.resolve("default")
        assert live != "default" and not find_stale(db.store, db.ledger, live).stale


def test_a_batch_run_records_no_file_of_a_collection_dropped_after_its_last_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files a run read are recorded (their digests, so a later run skips them)
    after its last write, the gate free meanwhile: recorded into a new collection of
    the same name, they would keep their documents out of it for good."""
    from embedops.ingest.batch import BatchIngest, IngestOptions

    _docs(tmp_path / "docs", 5, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        assert db.ledger is not None
        gate = WriteGate(db.new_ledger_handle())
        db.ingest([tmp_path / "docs"])
        _docs(tmp_path / "docs", 5, "second")
        record, dropped = BatchIngest._record_files, []

        def dropped_first(self: BatchIngest, files: Any) -> None:
            if files and self.gate is gate and not dropped:  # (the run's own record:
                dropped.append(True)  # DELETE /collections/default, and a new one)
                with gate.lock:
                    db.drop_collection("default")
                db.ingest([tmp_path / "docs" / "d000.txt"])
            record(self, files)

        monkeypatch.setattr(BatchIngest, "_record_files", dropped_first)
        run = BatchIngest(db.store, db.ledger, db.settings,
                          IngestOptions(collection="default"), gate=gate)
        with pytest.raises(CollectionChanged):
            run.run([tmp_path / "docs"])
        monkeypatch.undo()
        assert dropped
        again = db.ingest([tmp_path / "docs"])
        assert again.documents_new == 4  # (none kept out by a digest of the old run)


def test_a_failed_batch_run_stops_its_reader(tmp_path: Path) -> None:
    """A run that stops at a flush (its collection dropped) stops the thread reading its
    files, which would otherwise wait for good to put into a full queue (4,096 items)."""
    from embedops.ingest.batch import BatchIngest, IngestOptions

    _docs(tmp_path / "docs", 5, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        assert db.ledger is not None
        db.ingest([tmp_path / "docs"])
        _docs(tmp_path / "docs", 4200, "second")
        gate = WriteGate(db.new_ledger_handle())
        run = BatchIngest(db.store, db.ledger, db.settings,
                          IngestOptions(collection="default", batch_size=8), gate=gate)
        db.drop_collection("default")
        with pytest.raises(CollectionChanged):
            run.run([tmp_path / "docs"])
        assert not [t for t in threading.enumerate()
                    if t.name == "embedops-reader" and t.is_alive()]


def test_a_batch_run_dead_letters_nothing_into_a_collection_made_again(
        tmp_path: Path) -> None:
    from embedops.ingest.batch import BatchIngest, IngestOptions

    _docs(tmp_path / "docs", 3, "first")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        assert db.ledger is not None
        db.ingest([tmp_path / "docs"])
        (tmp_path / "docs" / "empty.txt").write_text("")  # (a rejection: no text)
        gate = WriteGate(db.new_ledger_handle())
        run = BatchIngest(db.store, db.ledger, db.settings,
                          IngestOptions(collection="default"), gate=gate)
        with gate.lock:  # (DELETE /collections/default, and a new one)
            db.drop_collection("default")
        (tmp_path / "new").mkdir()
        (tmp_path / "new" / "n0.txt").write_text("the new corpus")
        db.ingest([tmp_path / "new"])
        with pytest.raises(CollectionChanged):
            run.run([tmp_path / "docs" / "empty.txt"])
        assert db.ledger.dead_letters("default") == []
