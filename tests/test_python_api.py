"""The public Python client: the documented example runs as written; the client is the
one the CLI uses; read-only clients work beside a writer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import embedops
from embedops.errors import (
    ConfigError,
    DocumentNotFound,
    FingerprintMismatch,
    ModelConflict,
    StoreLocked,
    WrongCollectionKind,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
TEST_MODEL = "testing/hash-64"


@pytest.mark.slow
def test_documented_example_runs_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    example = blocks[-1]
    assert "embedops.open" in example
    exec(compile(example, str(DOC), "exec"), {})  # our own documentation, run as written


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cats.txt").write_text("Cats sleep most of the day in warm places.")
    (root / "dogs.txt").write_text("Dogs enjoy long walks in the park every morning.")
    return root


def test_ingest_search_get_through_the_client(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "docs")
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        first = db.ingest([corpus], collection="pets")
        again = db.ingest([corpus], collection="pets")
        assert (first.documents_new, again.documents_new, again.chunks_embedded) == (2, 0, 0)
        hits = db.search("cats sleep", collection="pets", k=2)
        assert hits[0].doc_id == "cats.txt" and hits[0].text.startswith("Cats")
        by_vector = db.search(db.embedder("pets").embed(["cats sleep"], "query")[0],
                              collection="pets", k=1)
        assert by_vector[0].id == hits[0].id
        doc = db.get("dogs.txt", collection="pets")
        assert doc.text == "Dogs enjoy long walks in the park every morning."
        assert doc.chunks()[0]["text"] == doc.text
        with pytest.raises(DocumentNotFound):
            db.get("nope", collection="pets")
        assert db.count("pets") == 2 and [c.name for c in db.list_collections()] == ["pets"]


def test_read_only_client_beside_a_writer(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "docs")
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as writer:
        writer.ingest([corpus])
        with pytest.raises(StoreLocked):
            embedops.open(tmp_path / "store")
        with embedops.open(tmp_path / "store", read_only=True) as reader:
            assert reader.search("dogs walk", k=1)[0].doc_id == "dogs.txt"
            assert reader.get("cats.txt").doc_id == "cats.txt"


def test_vectors_of_another_model_never_enter_a_collection(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "docs")
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        db.ingest([corpus], collection="bound")
        vectors = np.ones((1, 64), dtype=np.float32)
        with pytest.raises(FingerprintMismatch):  # raw vectors without the fingerprint
            db.upsert("bound", ["x"], vectors)
        with pytest.raises(FingerprintMismatch):
            db.upsert("bound", ["x"], vectors, fingerprint="another-model")
        fingerprint = db.get_collection("bound").fingerprint
        assert db.upsert("bound", ["x"], vectors, fingerprint=fingerprint) == 1
        with pytest.raises(ModelConflict, match="migrate"):
            db.ingest([corpus], collection="bound", model="testing/hash-32")
        db.create_collection("ext", dim=64)
        assert db.get_collection("ext").model == "external"
        assert db.upsert("ext", ["v"], vectors) == 1
        with pytest.raises(WrongCollectionKind):
            db.ingest([corpus], collection="ext")


def test_unknown_store_scheme_is_refused_and_creates_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="known schemes: embedded"):
        embedops.open("nosuchdb:///tmp/m.db")
    assert list(tmp_path.iterdir()) == []
    with embedops.open(f"embedded://{tmp_path / 'viaurl'}") as db:
        db.create_collection("c", dim=4)
    assert (tmp_path / "viaurl" / "store.sqlite").exists()


def test_put_and_delete_documents_given_as_data(tmp_path: Path) -> None:
    long_text = " ".join(f"word{i}" for i in range(400))  # over the test model's 128 tokens
    docs = [{"id": "a", "text": "Cats sleep in warm places.", "metadata": {"lang": "en"}},
            {"id": "b", "text": long_text}, {"id": "c", "text": "   "}]
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        first = db.put_documents(docs, collection="nodes", chunk=False)
        assert (first.documents_new, first.documents_failed) == (2, 1)
        assert db.ledger is not None and db.ledger.dead_letters("nodes")[0].doc_id == "c"
        assert len(db.get("a", collection="nodes").chunks()) == 1
        chunks_b = len(db.get("b", collection="nodes").chunks())
        assert chunks_b > 1  # longer than the model's context: split, never cut off
        again = db.put_documents(docs[:2], collection="nodes", chunk=False)
        assert (again.documents_unchanged, again.chunks_embedded) == (2, 0)
        hit = db.search("cats sleep", collection="nodes", k=1)[0]
        assert hit.doc_id == "a" and hit.payload["lang"] == "en"
        assert db.delete_documents(["a", "b"], collection="nodes") == 1 + chunks_b
        assert db.count("nodes") == 0 and db.ledger.documents("nodes") == {}


def test_put_documents_refuses_metadata_that_is_not_json(tmp_path: Path) -> None:
    import datetime

    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        result = db.put_documents([
            {"id": "ok", "text": "fine"},
            {"id": "dated", "text": "has a date", "metadata": {"when": datetime.date.today()}}])
        assert (result.documents_new, result.documents_failed) == (1, 1)
        assert db.ledger is not None
        assert db.ledger.dead_letters()[0].reason == "invalid_metadata"
