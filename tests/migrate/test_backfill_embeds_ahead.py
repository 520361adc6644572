"""A migration's backfill batch is read and embedded with no lock held; the service's
write lock is taken for the write alone. Documents another writer changes or deletes
while a batch is embedded are left out of it: that write was newer, and dual-write has
already put it in the shadow. Before, the batch held the lock through the new model's
embedding, and every other writer waited for it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedops
from embedops.embedders.testing import HashEmbedder
from embedops.migrate import Migrations

SHADOW_MODEL = "testing/hash-e5-32"


def _docs(root: Path, n: int, version: str = "first") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"d{i:04d}.txt").write_text(
            f"document {i} in its {version} version about topic {i % 7}")
    return root


def _on_shadow_embeds(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    """Call ``action(embedder)`` at the start of every batch the shadow's model embeds."""
    embed = HashEmbedder._embed_batch

    def watched(self: HashEmbedder, texts: list[str]) -> np.ndarray:
        if self.info.name == SHADOW_MODEL:
            action(self)
        return embed(self, texts)

    monkeypatch.setattr(HashEmbedder, "_embed_batch", watched)


def test_a_batch_is_embedded_with_the_write_lock_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.RLock()
    held, taken = [], []

    def take() -> None:  # (another writer of the service)
        got = lock.acquire(timeout=2)
        taken.append(got)
        if got:
            lock.release()

    def check(_: HashEmbedder) -> None:
        held.append(lock._is_owned())  # type: ignore[attr-defined]
        other = threading.Thread(target=take)
        other.start()
        other.join()

    with embedops.open(tmp_path / "store", model="testing/hash-64",
                       migration_batch_documents=8) as db:
        db.ingest([_docs(tmp_path / "docs", 20)], collection="kb")
        db.create_alias("live", "kb")
        migrations = Migrations(db, write_lock=lock)
        migrations.start("live", SHADOW_MODEL)
        _on_shadow_embeds(monkeypatch, check)
        assert migrations.backfill("live").phase == "ready"
        assert db.count(migrations.current("live").shadow) == db.count("kb") == 20
    assert len(held) >= 3 and not any(held), held  # (three batches of up to 8)
    assert all(taken), taken


def test_documents_changed_or_deleted_while_a_batch_is_embedded_are_left_to_dual_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer of the service, while the first batch is embedded: d0001 gets a
    new version and d0002 is deleted (each through the write lock, into live and, by
    dual-write, into the shadow). The batch writes neither: the shadow ends with the
    new version of d0001 and without d0002."""
    lock = threading.RLock()
    docs = _docs(tmp_path / "docs", 6)
    with embedops.open(tmp_path / "store", model="testing/hash-64") as db:
        db.ingest([docs], collection="kb")
        db.create_alias("live", "kb")
        migrations = Migrations(db, write_lock=lock)
        shadow = migrations.start("live", SHADOW_MODEL).shadow
        written: list[bool] = []

        def another_writer() -> None:
            with lock:
                (docs / "d0001.txt").write_text("document 1 in its second version")
                db.ingest([docs / "d0001.txt"], collection="live")
                db.delete_documents(["d0002.txt"], collection="live")
            written.append(True)

        started: list[bool] = []

        def meanwhile(_: HashEmbedder) -> None:
            if not started:  # (the first batch; the writer's dual-write embeds too)
                started.append(True)
                writer = threading.Thread(target=another_writer)
                writer.start()
                writer.join(10)  # (it waited for the lock before: the batch held it)
                assert written, "the other writer waited for the batch's lock"

        _on_shadow_embeds(monkeypatch, meanwhile)
        assert migrations.backfill("live").phase == "ready"
        monkeypatch.undo()
        assert db.ledger is not None
        live = {d: r.content_hash for d, r in db.ledger.documents("kb").items()}
        mirrored = {d: r.content_hash for d, r in db.ledger.documents(shadow).items()}
        assert mirrored == live and "d0002.txt" not in live and len(live) == 5
        stored = db.ledger.stored(shadow, "d0001.txt")
        assert stored is not None and stored.text == "document 1 in its second version"
        hits = db.search("second version", collection=shadow, k=1)
        assert hits[0].doc_id == "d0001.txt"
        assert db.count(shadow, {"field": "doc_id", "eq": "d0002.txt"}) == 0
        assert db.count(shadow) == db.count("kb")


def test_a_document_taken_out_of_the_shadow_while_its_batch_is_embedded_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shadow changes while live does not (a repair takes a document out of it)
    after a batch was read, where the batch found that document unchanged: the batch
    takes it as it is then (new to the shadow: embedded), and the shadow ends whole."""
    from embedops.ingest.write import delete_documents

    lock = threading.RLock()
    with embedops.open(tmp_path / "store", model="testing/hash-64") as db:
        db.ingest([_docs(tmp_path / "docs", 6)], collection="kb")
        db.create_alias("live", "kb")
        migrations = Migrations(db, write_lock=lock)
        shadow = migrations.start("live", SHADOW_MODEL).shadow
        assert db.ledger is not None
        migrations.backfill("live", max_batches=1)  # (the whole corpus, one batch)
        first = {d: r.content_hash for d, r in db.ledger.documents(shadow).items()}
        db.ledger.update_migration(migrations.current("live").migration_id,
                                   "backfilling", cursor="")  # (again from the start)
        read_again, started = Migrations._read_again, []

        def after_the_batch_was_read(self: Migrations, m: Any, last: str) -> Any:
            if not started:  # (as another writer would have, just before the lock)
                started.append(True)
                delete_documents(db.store, db.ledger, [shadow], ["d0003.txt"])
            return read_again(self, m, last)

        monkeypatch.setattr(Migrations, "_read_again", after_the_batch_was_read)
        assert migrations.backfill("live").phase == "ready"
        assert started
        mirrored = {d: r.content_hash for d, r in db.ledger.documents(shadow).items()}
        assert mirrored == first and "d0003.txt" in mirrored
        assert db.count(shadow, {"field": "doc_id", "eq": "d0003.txt"}) > 0
