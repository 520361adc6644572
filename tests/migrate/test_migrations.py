"""Model migrations: writes during a migration land in both collections, the gate refuses
a worse model, a collection addressed by name gets an alias transparently, and readers
see every step without an error or an empty result."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.client import Client
from embedops.errors import MigrationError
from embedops.migrate import Migrations
from embedops.quality.beir import resolve_dataset

HASH = "testing/hash-64"


def _docs(root: Path, n: int, start: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / f"d{i:04d}.txt").write_text(
            f"document {i} is about topic {i % 9} with words alpha{i % 5} beta{i % 3}")
    return root


def _open(tmp_path: Path, **kw: Any) -> Client:
    return embedops.open(tmp_path / "store", model=HASH, **kw)


def test_writes_during_a_migration_land_in_both_collections(tmp_path: Path) -> None:
    corpus = _docs(tmp_path / "docs", 30)
    with _open(tmp_path) as db:
        db.ingest([corpus], collection="kb")
        db.create_alias("live", "kb")
        migrations = Migrations(db)
        m = migrations.start("live", "testing/hash-e5-32")
        assert (m.phase, m.live, db.resolve("live")) == ("backfilling", "kb", "kb")
        # a write during the backfill (before the shadow holds anything) goes to both
        (corpus / "new.txt").write_text("a brand new document about zebras")
        (corpus / "d0000.txt").unlink()
        summary = db.ingest([corpus], collection="live", prune=True)
        assert summary.documents_new == 1 and summary.documents_deleted == 1
        for name in ("kb", m.shadow):
            assert db.count(name, {"field": "doc_id", "eq": "new.txt"}) == 1, name
            assert db.count(name, {"field": "doc_id", "eq": "d0000.txt"}) == 0, name
        assert migrations.backfill("live").phase == "ready"
        assert db.count(m.shadow) == db.count("kb") == 30
        migrations.swap("live", force=True)
        assert db.resolve("live") == m.shadow
        hit = db.search("zebras", collection="live", k=1)[0]
        assert hit.doc_id == "new.txt" and hit.payload["fingerprint"] == (
            db.get_collection(m.shadow).fingerprint)
        # after the swap, writes keep the old collection current for the rollback window
        (corpus / "later.txt").write_text("written after the swap")
        db.ingest([corpus], collection="live")
        assert db.count("kb", {"field": "doc_id", "eq": "later.txt"}) == 1
        migrations.rollback("live")
        assert db.search("written after the swap", collection="live", k=1)[0].doc_id == (
            "later.txt")
        migrations.swap("live", force=True)
        finished = migrations.finalize("live")
        assert finished.phase == "finalized"
        assert [c.name for c in db.list_collections()] == [m.shadow]
        assert db.ledger is not None and db.ledger.dual_write_targets(m.shadow) == []


def test_the_shadow_keeps_the_live_collections_index_params(tmp_path: Path) -> None:
    """A collection that chose its index (one graph, a degree) keeps the choice through a
    model upgrade: the shadow is made with the live collection's parameters."""
    chosen = {"segment_size": 0, "connectivity": 8, "exact_threshold": 0}
    with _open(tmp_path) as db:
        db.create_collection("kb", model=HASH, index_params=chosen)
        db.ingest([_docs(tmp_path / "docs", 12)], collection="kb")
        db.create_alias("live", "kb")
        m = Migrations(db).start("live", "testing/hash-e5-32")
        assert db.get_collection(m.shadow).index_params == chosen
        assert db.store.stats(m.shadow)["index_segments"] == 1


def test_the_gate_refuses_a_worse_model_and_force_is_recorded(tmp_path: Path) -> None:
    dataset = resolve_dataset("docs-qa")
    with _open(tmp_path) as db:
        db.ingest([dataset / "corpus.jsonl"], collection="docs", id_field="_id")
        migrations = Migrations(db)
        migrations.start("docs", "testing/hash-4")  # a deliberately weak model
        migrations.backfill("docs")
        report = migrations.evaluate("docs", dataset)
        assert report["live"]["recall@10"] > report["shadow"]["recall@10"] + 0.05
        assert report["gate_passed"] is False and report["live"]["model"] == HASH
        with pytest.raises(MigrationError, match="failed the gate"):
            migrations.swap("docs")
        assert db.resolve("docs") == report["live"]["collection"]
        swapped = migrations.swap("docs", force=True)
        assert swapped.forced and swapped.history[-1]["note"] == "forced past the gate"


def test_the_gate_passes_a_better_model(tmp_path: Path) -> None:
    dataset = resolve_dataset("docs-qa")
    with embedops.open(tmp_path / "store", model="testing/hash-8") as db:
        db.ingest([dataset / "corpus.jsonl"], collection="docs", id_field="_id")
        migrations = Migrations(db)
        migrations.start("docs", HASH)
        migrations.backfill("docs")
        report = migrations.evaluate("docs", dataset)
        assert report["gate_passed"] is True
        assert report["shadow"]["recall@10"] > report["live"]["recall@10"]
        assert migrations.swap("docs").phase == "swapped"


def test_steps_out_of_order_are_refused_with_the_phase(tmp_path: Path) -> None:
    with _open(tmp_path) as db:
        db.ingest([_docs(tmp_path / "docs", 3)], collection="kb")
        migrations = Migrations(db)
        with pytest.raises(MigrationError, match="no migration"):
            migrations.status("kb")
        migrations.start("kb", "testing/hash-32")
        with pytest.raises(MigrationError, match="already has a migration"):
            migrations.start("kb", "testing/hash-16")
        with pytest.raises(MigrationError, match=r"cannot rollback .* backfilling"):
            migrations.rollback("kb")
        assert migrations.pause("kb").phase == "paused"
        with pytest.raises(MigrationError, match="cannot backfill"):
            migrations.backfill("kb")
        assert migrations.resume("kb").phase == "backfilling"
        db.ingest([tmp_path / "docs"], collection="same")
        with pytest.raises(MigrationError, match="already holds vectors"):
            migrations.start("same", HASH)


def test_readers_never_see_an_error_or_an_empty_result(tmp_path: Path) -> None:
    corpus = _docs(tmp_path / "docs", 400)
    with _open(tmp_path) as writer:
        writer.ingest([corpus], collection="kb")
        fingerprints = {writer.get_collection("kb").fingerprint}
        errors: list[str] = []
        seen: set[str] = set()
        stop = threading.Event()

        def read() -> None:
            with embedops.open(tmp_path / "store", read_only=True) as reader:
                while not stop.is_set():
                    try:
                        hits = reader.search("topic 3 alpha1", collection="kb", k=5)
                    except Exception as exc:  # counted: a reader must never fail
                        errors.append(repr(exc))
                        continue
                    if not hits:
                        errors.append("empty")
                    prints = {h.payload["fingerprint"] for h in hits}
                    if len(prints) != 1:
                        errors.append(f"mixed models {prints}")
                    seen.update(prints)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            migrations = Migrations(writer)
            m = migrations.start("kb", "testing/hash-e5-64", max_rate=2000)
            fingerprints.add(writer.get_collection(m.shadow).fingerprint)
            migrations.backfill("kb")
            for step in ("swap", "rollback", "swap"):
                getattr(migrations, step)("kb", **({"force": True} if step == "swap" else {}))
                threading.Event().wait(0.3)
        finally:
            stop.set()
            thread.join()
    assert errors == []
    assert seen == fingerprints  # both models answered, never together


def test_two_processes_backfilling_one_migration_embed_each_batch_once(
        tmp_path: Path) -> None:
    """What two service replicas on one ledger do: each backfills the same migration with
    its own ledger handle and write lock. The claim on the migration lets one batch run at
    a time, so the counts add up to the live collection exactly and nothing is embedded
    twice."""
    corpus = _docs(tmp_path / "docs", 60)
    with _open(tmp_path, migration_batch_documents=4) as db:
        db.ingest([corpus], collection="kb")
        first = Migrations(db, ledger=db.new_ledger_handle())
        m = first.start("kb", "testing/hash-e5-32")
        second = Migrations(db, ledger=db.new_ledger_handle())
        done: list[str] = []
        threads = [threading.Thread(target=lambda ms=ms: done.append(ms.backfill("kb").phase))
                   for ms in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert done == ["ready", "ready"]
        record = first.current("kb")
        assert (record.docs_done, record.chunks_done) == (60, 60)
        assert db.count(m.shadow) == db.count("kb") == 60
        assert first.claims.holders("@migrations") == {}


def test_a_queued_request_is_applied_once_by_one_of_several_runners(tmp_path: Path) -> None:
    """Replicas all see a request a command queued: the first to claim it applies it, and
    one that read it before that finished does not apply it again (a second ``pause``
    would fail and overwrite the answer with an error)."""
    from embedops.ingest.targets import EmbedderPool
    from embedops.migrate.runner import MigrationRunner

    corpus = _docs(tmp_path / "docs", 8)
    with _open(tmp_path) as db:
        db.ingest([corpus], collection="kb")
        Migrations(db).start("kb", "testing/hash-e5-32")
        assert db.ledger is not None
        request_id = db.ledger.request_migration_action("kb", "pause", {})
        pool = EmbedderPool(db.settings)
        runners = [MigrationRunner(db, db.new_ledger_handle(), pool, threading.RLock())
                   for _ in range(2)]
        (request,) = runners[1].ledger.pending_migration_requests()  # read before it is done
        runners[0].step()
        runners[1]._answer(request)
        done, result, error = db.ledger.migration_request(request_id)
        assert done and error is None and result["phase"] == "paused"


def test_a_backfill_batch_waits_for_room_after_the_write_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backfill batch that fills the shadow's pending segment waits for the merger
    after releasing the write lock, so the service's other writes are not held up."""
    from embedops.store import embedded
    from embedops.store.embedded import EmbeddedStore

    corpus = _docs(tmp_path / "docs", 30)
    lock = threading.RLock()
    free_while_waiting: list[bool] = []
    real_wait = EmbeddedStore._wait_for_merger

    def watched(self: EmbeddedStore, cid: int, target: int) -> None:
        taken: list[bool] = []

        def take() -> None:
            taken.append(lock.acquire(timeout=0.2))
            if taken[0]:
                lock.release()

        other = threading.Thread(target=take)
        other.start()
        other.join()
        free_while_waiting.append(taken[0])
        real_wait(self, cid, target)

    with _open(tmp_path) as db:
        db.ingest([corpus], collection="kb")
        db.create_alias("live", "kb")
        migrations = Migrations(db, write_lock=lock)
        migrations.start("live", "testing/hash-e5-32")
        monkeypatch.setattr(embedded, "PENDING_MAX", 0)  # (every write waits for room)
        monkeypatch.setattr(EmbeddedStore, "_wait_for_merger", watched)
        assert migrations.backfill("live").phase == "ready"
    assert free_while_waiting and all(free_while_waiting), free_while_waiting
