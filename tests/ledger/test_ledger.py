"""The ledger on a real SQLite file: documents, dead letters, runs, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from embedops.errors import StoreCorrupted, StoreError
from embedops.ledger import DocRecord, Ledger
from embedops.ledger.schema import MIGRATIONS


def _rec(doc_id: str, h: str = "h", chunks: int = 2) -> DocRecord:
    return DocRecord(doc_id, h, "m", chunks, f"/src/{doc_id}", "fp", "2026-01-01T00:00:00")


def test_documents_roundtrip_and_update(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.commit_documents("c", [_rec("a"), _rec("b")])
    ledger.commit_documents("c", [_rec("a", h="h2", chunks=5)])
    docs = ledger.documents("c")
    assert docs["a"].content_hash == "h2" and docs["a"].chunk_count == 5
    assert ledger.document_count("c") == 2 and ledger.document_count("other") == 0
    assert set(ledger.documents("c", ["a", "zzz"])) == {"a"}
    ledger.remove_documents("c", ["a"])
    assert set(ledger.documents("c")) == {"b"}


def test_many_ids_lookup(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.commit_documents("c", [_rec(f"d{i}") for i in range(1200)])
    assert len(ledger.documents("c", [f"d{i}" for i in range(0, 1200, 2)])) == 600


def test_dead_letters_count_attempts_and_clear_on_success(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.record_dead_letter("c", "x", "/src/x", "decode", "binary", "gzip magic")
    ledger.record_dead_letter("c", "x", "/src/x", "validate", "garbage", "")
    (letter,) = ledger.dead_letters("c")
    assert letter.attempts == 2 and letter.reason == "garbage"
    assert letter.first_seen <= letter.last_seen
    ledger.commit_documents("c", [_rec("x")])
    assert ledger.dead_letters("c") == []


def test_purge_by_collection_and_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for c, d in [("c", "1"), ("c", "2"), ("k", "1")]:
        ledger.record_dead_letter(c, d, None, "embed", "embedder_permanent")
    assert ledger.purge_dead_letters("c", ["1"]) == 1
    assert {(d.collection, d.doc_id) for d in ledger.dead_letters()} == {("c", "2"), ("k", "1")}
    assert ledger.purge_dead_letters() == 2


def test_runs_are_recorded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    run = ledger.start_run("c")
    ledger.finish_run(run, "done", {"chunks_embedded": 3})
    conn = sqlite3.connect(tmp_path / "ledger.db")
    assert conn.execute("SELECT status, summary FROM runs").fetchone() == (
        "done", '{"chunks_embedded": 3}')


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    Ledger(tmp_path).close()
    Ledger(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [number for number, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))  # numbered without gaps


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Ledger(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'now')")
    conn.commit()
    with pytest.raises(StoreCorrupted, match="newer"):
        Ledger(tmp_path)


def test_read_only_needs_an_existing_ledger(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nothing was ingested"):
        Ledger(tmp_path / "empty", read_only=True)


def test_upgrade_from_version_1_keeps_documents(tmp_path: Path) -> None:
    """A ledger written by the first schema opens under the current one, data intact."""
    conn = sqlite3.connect(tmp_path / "ledger.db")
    conn.executescript(MIGRATIONS[0][2] + ";CREATE TABLE schema_migrations (version INTEGER "
                       "PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);"
                       "INSERT INTO schema_migrations VALUES (1, 'initial', 'then');"
                       "INSERT INTO documents VALUES ('c','d','h','m',3,'s','fp','t','t');")
    conn.close()
    docs = Ledger(tmp_path).documents("c")
    assert docs["d"].chunk_count == 3 and docs["d"].plan == ""


def test_forgetting_documents_forgets_their_source_files(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.commit_documents("c", [_rec("a"), _rec("b")])
    ledger.record_sources("c", [("/abs/a", "/src/a", "h1", "o"), ("/abs/b", "/src/b", "h2", "o")])
    ledger.remove_documents("c", ["a"])
    assert set(ledger.source_digests("c")) == {"/abs/b"}
