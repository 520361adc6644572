"""Stale detection and re-embedding, metadata backfill without re-embedding, declared
payload fields: through the real commands, checked against what the store holds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from tests.e2e.conftest import Cli


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / f"{name}.txt").write_text(f"Document {name} says something about {name}.")
    (root / "records.jsonl").write_text(
        '{"id": "r1", "text": "Tea is steamed."}\n{"id": "r2", "text": "Coffee is roasted."}\n')
    return root


def _vectors(store: Path, collection: str = "default") -> dict[str, np.ndarray]:
    with open_store(store, read_only=True) as s:
        return {p.id: p.vector for page in s.scan(collection, with_vectors=True)
                for p in page}  # type: ignore[misc]


def test_stale_reports_by_reason_and_reembed_fixes_exactly_those(cli: Cli,
                                                                  corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    assert cli.json("stale")["stale_documents"] == 0
    (corpus / "a.txt").write_text("Document a now says something else entirely.")
    (corpus / "b.txt").unlink()
    (corpus / "records.jsonl").write_text(
        '{"id": "r1", "text": "Tea is steamed."}\n{"id": "r2", "text": "Coffee is brewed."}\n')
    with sqlite3.connect(cli.store / "ledger.db") as conn:  # a vector of an older model
        conn.execute("UPDATE documents SET fingerprint = 'older-model' WHERE doc_id = 'c.txt'")
    with open_store(cli.store):  # a writer holds the store, as `serve` does
        report = cli.json("stale")
    assert report["stale_documents"] == 4
    assert (report["content_changed"], report["source_missing"], report["model_changed"]) == (
        2, 1, 1)
    assert report["examples"] == {"content_changed": ["a.txt", "r2"],
                                  "source_missing": ["b.txt"], "model_changed": ["c.txt"]}
    before = _vectors(cli.store)
    summary = cli.json("reembed", "--stale")
    assert summary["documents_changed"] == 3 and summary["chunks_embedded"] == 3
    after = _vectors(cli.store)
    changed = {i for i in before if not np.allclose(before[i], after[i])}
    assert changed == {"a.txt#0", "r2#0"}  # c.txt: same text and model, same vector
    left = cli.json("stale")
    assert (left["stale_documents"], left["source_missing"]) == (1, 1)
    assert cli.json("get", "c.txt")["fingerprint"] != "older-model"


def test_reembed_by_time(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    assert cli.json("reembed", "--changed-since", "2999-01-01")["documents_changed"] == 0
    assert cli.json("reembed", "--older-than", "0s")["documents_changed"] == 5
    bad = cli.run("reembed", "--older-than", "soon", check=False)
    assert bad.returncode == 2 and "duration" in bad.stderr
    assert cli.run("reembed", check=False).returncode == 2


def test_backfill_sets_a_new_field_without_embedding(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    before = _vectors(cli.store)
    assert cli.json("search", "tea", "--filter", 'lang = "en"') == []  # the drift
    result = cli.json("backfill", "--collection", "default", "--field", "lang",
                      "--default", "en")
    assert result["points_updated"] == 5 and result["embedding_calls"] == 0
    assert {h["doc_id"] for h in cli.json("search", "tea", "--filter", 'lang = "en"',
                                          "-k", "10")} == {"a.txt", "b.txt", "c.txt",
                                                           "r1", "r2"}
    after = _vectors(cli.store)
    assert all(np.array_equal(before[i], after[i]) for i in before)
    again = cli.json("backfill", "--collection", "default", "--field", "lang",
                     "--default", "de", "--where", 'doc_id = "r1"')
    assert again["points_updated"] == 0  # only points that lack the field


def test_declared_fields_default_new_writes_and_refuse_wrong_types(cli: Cli,
                                                                   corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    added = cli.json("schema", "add-field", "default", "tier", "--type", "str",
                     "--default", "free", "--index")
    assert added["points_updated"] == 5 and added["embedding_calls"] == 0
    cli.json("schema", "add-field", "default", "year", "--type", "int")
    shown = cli.json("schema", "show", "default")["fields"]
    assert [(f["field"], f["type"], f["default"]) for f in shown] == [
        ("tier", "str", "free"), ("year", "int", None)]
    (corpus / "more.jsonl").write_text(
        '{"id": "n1", "text": "New tea.", "year": 2024}\n'
        '{"id": "n2", "text": "Bad year.", "year": "last year"}\n')
    summary = cli.json("ingest", str(corpus / "more.jsonl"), "--id-field", "id",
                       "--model", "testing/hash-64")
    assert summary["documents_new"] == 1 and summary["documents_failed"] == 1
    letter = cli.json("dlq", "show", "n2")[0]
    assert letter["reason"] == "schema_violation" and "year" in letter["detail"]
    hits = cli.json("search", "tea", "--filter", 'tier = "free"', "-k", "10")
    assert "n1" in {h["doc_id"] for h in hits} and "n2" not in {h["doc_id"] for h in hits}
    bad = cli.run("schema", "add-field", "default", "x", "--type", "datetime", check=False)
    assert bad.returncode == 2 and "type must be one of" in bad.stderr
    assert json.loads(cli.run("collections", "--json").stdout)[0]["points"] == 6
