"""Re-embedding takes work claims as ingest runs do: a document another live run is
embedding is left to it and re-embedded once that run's claim is gone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import embedops
from embedops.freshness.reembed import reembed_documents
from embedops.ledger.claims import Claims

TEST_MODEL = "testing/hash-64"


def test_reembed_waits_for_documents_another_run_holds(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name in ("a", "b", "c"):
        (corpus / f"{name}.txt").write_text(f"Document {name} says something about {name}.")
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        db.ingest([corpus])
        assert db.ledger is not None
        other = Claims(db.ledger, 3600)  # another live run, embedding a.txt right now
        assert other.take("default", ["a.txt"]) == {"a.txt"}
        before = db.ledger.documents("default", ["a.txt", "b.txt", "c.txt"])
        result: list[object] = []
        worker = threading.Thread(target=lambda: result.append(
            reembed_documents(db, "default", ["a.txt", "b.txt", "c.txt"])))
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # b and c are done without waiting for a
            now = db.ledger.documents("default", ["b.txt", "c.txt"])
            if all(now[d].last_embedded_at != before[d].last_embedded_at for d in now):
                break
            time.sleep(0.05)
        assert db.ledger.documents("default", ["a.txt"])["a.txt"] == before["a.txt"]
        assert worker.is_alive()  # a.txt waits for its holder
        other.release("default", ["a.txt"])
        worker.join(timeout=30)
        assert not worker.is_alive()
        summary = result[0]
        assert summary.documents_changed == 3  # type: ignore[attr-defined]
        after = db.ledger.documents("default", ["a.txt"])["a.txt"]
        assert after.last_embedded_at != before["a.txt"].last_embedded_at
        assert other.holders("default") == {}
