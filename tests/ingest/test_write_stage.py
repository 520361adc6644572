"""The one write stage: one call writes a set of documents to several collections, each
with its own model and chunking; orphans and deletes reach every target; a write queued
through an alias lands where the alias points when it is applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.ingest.ordering import WriteGate
from embedops.ingest.realtime import RealtimeWorker
from embedops.ingest.stages import Work, classify
from embedops.ingest.targets import EmbedderPool
from embedops.ingest.write import Target, delete_documents, write_documents
from embedops.ledger import Ledger
from embedops.metrics import Metrics
from embedops.store import EmbeddedStore, open_store
from embedops.types import Document

LONG = " ".join(f"word{i}" for i in range(60))


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(store=str(tmp_path / "store"), chunk_tokens=16, chunk_overlap=2)
    store, ledger = open_store(settings.store), Ledger(tmp_path / "store")
    pool = EmbedderPool(settings)
    yield settings, store, ledger, pool
    ledger.close()
    store.close()


def _target(store: EmbeddedStore, pool: EmbedderPool, name: str, model: str) -> Target:
    embedder = load_embedder(model, Path("."))
    store.create_collection(name, embedder.info.dim, fingerprint=embedder.info.fingerprint,
                            model=embedder.info.name)
    return pool.target(store.get_collection(name))


def _works(ledger: Ledger, target: Target, docs: list[Document]) -> list[Work]:
    previous = ledger.documents(target.name, [d.id for d in docs])
    return [classify(d, previous.get(d.id), target.chunker, lambda: None) for d in docs]


def test_one_write_reaches_every_target_with_its_own_model(env) -> None:  # type: ignore[no-untyped-def]
    _, store, ledger, pool = env
    live = _target(store, pool, "live", "testing/hash-64")
    shadow = _target(store, pool, "shadow", "testing/hash-e5-32")
    failures: list[tuple[str, str]] = []
    docs = [Document("long", LONG, {"lang": "en"}), Document("short", "a few words here")]
    result = write_documents(store, ledger, [live, shadow], _works(ledger, live, docs),
                             lambda w, stage, reason, detail: failures.append((w.doc.id, reason)))
    assert failures == [] and {w.doc.id for w in result.committed} == {"long", "short"}
    for target, dim in ((live, 64), (shadow, 32)):
        records = ledger.documents(target.name)
        assert set(records) == {"long", "short"}
        assert {r.fingerprint for r in records.values()} == {target.info.fingerprint}
        assert store.count(target.name) == sum(r.chunk_count for r in records.values())
        (point,) = store.get(target.name, ["short#0"], with_vectors=True)
        assert point.vector is not None and point.vector.shape == (dim,)
        assert point.payload["fingerprint"] == target.info.fingerprint
    # the shadow's vectors are its own model's document-role vectors
    (point,) = store.get("shadow", ["short#0"], with_vectors=True)
    expected = shadow.embedder.embed(["a few words here"], "document")[0]
    assert np.allclose(point.vector, expected, atol=1e-6)

    # a shrunken document leaves no orphan in any target
    shrunk = [Document("long", "now only three words")]
    write_documents(store, ledger, [live, shadow], _works(ledger, live, shrunk),
                    lambda *a: None)
    for target in (live, shadow):
        assert ledger.documents(target.name)["long"].chunk_count == 1
        assert [p.id for page in store.scan(target.name, filter={"field": "doc_id",
                                                                  "eq": "long"})
                for p in page] == ["long#0"]
    # a delete reaches every target, ledger records and content included
    delete_documents(store, ledger, ["live", "shadow"], ["long"])
    for target in (live, shadow):
        assert "long" not in ledger.documents(target.name)
        assert store.count(target.name, {"field": "doc_id", "eq": "long"}) == 0
        assert ledger.stored(target.name, "long") is None


def test_unchanged_documents_are_not_rewritten_to_further_targets(env) -> None:  # type: ignore[no-untyped-def]
    _, store, ledger, pool = env
    live = _target(store, pool, "live", "testing/hash-64")
    shadow = _target(store, pool, "shadow", "testing/hash-32")
    docs = [Document("d", "some words to embed")]
    write_documents(store, ledger, [live], _works(ledger, live, docs), lambda *a: None)
    again = write_documents(store, ledger, [live, shadow], _works(ledger, live, docs),
                            lambda *a: None)
    assert again.chunks_embedded == 0 and store.count("shadow") == 0


def test_a_write_queued_through_an_alias_lands_where_the_alias_points_when_applied(
        env) -> None:  # type: ignore[no-untyped-def]
    settings, store, ledger, pool = env
    _target(store, pool, "v1", "testing/hash-64")
    _target(store, pool, "v2", "testing/hash-e5-64")
    store.create_alias("live", "v1")
    # queued while the alias points at v1 (as PUT /collections/live/documents/d does)
    ledger.enqueue("v1", [("d", "put", {"text": "queued before the swap", "alias": "live"})])
    store.repoint_alias("live", "v2")
    worker = RealtimeWorker(store, ledger, WriteGate(ledger), pool, settings, Metrics())
    assert worker.drain_once() == 1
    assert store.count("v1") == 0 and [p.id for p in store.get("v2", ["d#0"])] == ["d#0"]
    assert ledger.stored("v2", "d") is not None and ledger.stored("v2", "d").text == (
        "queued before the swap")


def test_documents_of_a_modality_the_model_does_not_take_become_dead_letters(
        env) -> None:  # type: ignore[no-untyped-def]
    _, store, ledger, pool = env
    live = _target(store, pool, "live", "testing/hash-64")
    image = Document("photo.png", "a red car", modality="image", data=b"\x89PNG...")
    failed: list[tuple[str, str, str]] = []
    result = write_documents(
        store, ledger, [live], _works(ledger, live, [image, Document("t", "some text")]),
        lambda w, stage, reason, detail: failed.append((w.doc.id, reason, detail)))
    assert [w.doc.id for w in result.committed] == ["t"]
    assert failed[0][:2] == ("photo.png", "unsupported_modality")
    assert "text" in failed[0][2] and "image" in failed[0][2]
    assert store.count("live") == 1


def test_a_large_write_is_committed_in_slices(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A search waits for a store transaction in progress, so many points go in slices
    of ``UPSERT_SLICE`` (each one transaction: the store's change sequence counts them);
    every point lands and the ledger commits the documents once."""
    from embedops.ingest import write

    _, store, ledger, pool = env
    live = _target(store, pool, "live", "testing/hash-64")
    monkeypatch.setattr(write, "UPSERT_SLICE", 4)
    docs = [Document(f"d{i}", LONG) for i in range(3)]
    works = _works(ledger, live, docs)
    chunks = sum(len(w.chunks) for w in works)
    assert chunks > 8
    before = store.stats("live")["seq"]
    result = write_documents(store, ledger, [live], works, lambda *a: None)
    assert result.chunks_embedded == chunks == store.count("live")
    assert store.stats("live")["seq"] - before == -(-chunks // 4)
    assert set(ledger.documents("live")) == {"d0", "d1", "d2"}
