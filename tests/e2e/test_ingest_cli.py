"""ingest -> search -> verify -> dlq through the real command, checking what landed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from embedops.ledger import Ledger
from embedops.store import open_store
from tests.e2e.conftest import Cli

PARAGRAPH = ("Vector databases store embeddings next to their metadata. "
             "An HNSW graph answers nearest-neighbour queries quickly. ")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("Cats sleep most of the day in warm places. " * 3)
    (root / "sub" / "b.md").write_text("# Dogs\n\nDogs enjoy long walks in the park.\n")
    (root / "page.html").write_text(
        "<html><head><title>Rust</title><script>var x=1;</script></head>"
        "<body><p>Rust prevents data races at compile time &amp; more.</p></body></html>")
    (root / "long.txt").write_text(PARAGRAPH * 60)
    records = [
        {"_id": "r1", "title": "Tea", "text": "Green tea is steamed, black tea is oxidised.",
         "metadata": {"lang": "en", "year": 2021}},
        {"_id": "r2", "title": "Café", "text": "Le café est une boisson chaude.",
         "metadata": {"lang": "fr", "year": 2019}},
    ]
    lines = [json.dumps(r) for r in records] + ["{not json"]
    (root / "records.jsonl").write_text("\n".join(lines) + "\n")
    (root / "archive.txt").write_bytes(gzip.compress(b"hidden text " * 100))
    return root


def _points(store: Path, collection: str = "default") -> dict[str, dict]:
    with open_store(store, read_only=True) as s:
        return {p.id: p.payload for page in s.scan(collection) for p in page}


def test_first_run_then_idempotent_rerun(cli: Cli, corpus: Path) -> None:
    first = cli.ingest(str(corpus), "--chunk-tokens", "32", "--overlap", "4")
    assert first["documents_new"] == 6  # a, b, page, long, r1, r2
    assert first["documents_failed"] == 2  # gzip bytes named .txt, the malformed line
    points = _points(cli.store)
    assert len(points) == first["chunks_embedded"] > 6
    long_chunks = [p for p in points.values() if p["doc_id"] == "long.txt"]
    assert len(long_chunks) > 5
    assert points["r1#0"]["lang"] == "en" and points["r1#0"]["title"] == "Tea"
    assert points["r1#0"]["text"].startswith("Tea Green tea")
    for key in ("doc_id", "chunk", "start", "end", "source", "content_hash",
                "last_embedded_at", "fingerprint"):
        assert key in points["a.txt#0"]

    second = cli.ingest(str(corpus), "--chunk-tokens", "32", "--overlap", "4")
    assert second["chunks_embedded"] == 0
    assert second["documents_unchanged"] == 6
    assert _points(cli.store) == points


def test_shrunk_document_leaves_no_orphans(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus), "--chunk-tokens", "32", "--overlap", "4")
    before = [i for i in _points(cli.store) if i.startswith("long.txt#")]
    (corpus / "long.txt").write_text(PARAGRAPH * 2)
    summary = cli.ingest(str(corpus), "--chunk-tokens", "32", "--overlap", "4")
    after = sorted(i for i in _points(cli.store) if i.startswith("long.txt#"))
    assert summary["documents_changed"] == 1
    assert summary["chunks_deleted"] == len(before) - len(after) > 0
    assert after == [f"long.txt#{n}" for n in range(len(after))]


def test_metadata_change_updates_payload_not_vector(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    with open_store(cli.store, read_only=True) as s:
        vector_before = s.get("default", ["r1#0"], with_vectors=True)[0].vector
    text = (corpus / "records.jsonl").read_text().replace('"year": 2021', '"year": 2024')
    (corpus / "records.jsonl").write_text(text)
    summary = cli.ingest(str(corpus))
    assert summary["documents_metadata_updated"] == 1
    assert summary["chunks_embedded"] == 0
    with open_store(cli.store, read_only=True) as s:
        point = s.get("default", ["r1#0"], with_vectors=True)[0]
    assert point.payload["year"] == 2024
    np.testing.assert_array_equal(point.vector, vector_before)


def test_prune_deletes_documents_gone_from_the_source(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    (corpus / "a.txt").unlink()
    kept = cli.ingest(str(corpus))
    assert kept["documents_deleted"] == 0 and "a.txt#0" in _points(cli.store)
    pruned = cli.ingest(str(corpus), "--prune")
    assert pruned["documents_deleted"] == 1
    assert not any(p.startswith("a.txt#") for p in _points(cli.store))


def test_search_json_and_filter(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    hits = cli.json("search", "green tea oxidised", "-k", "3")
    assert hits[0]["doc_id"] == "r1"
    assert set(hits[0]) >= {"id", "doc_id", "score", "text", "payload"}
    french = cli.json("search", "tea", "--filter", 'lang = "fr"')
    assert [h["doc_id"] for h in french] == ["r2"]


def test_dead_letters_list_show_retry_purge(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    letters = cli.json("dlq", "list")
    reasons = {d["doc_id"]: d for d in letters}
    assert reasons["archive.txt"]["reason"] == "binary"
    assert reasons["archive.txt"]["stage"] in ("decode", "validate")
    assert any(d["reason"] == "malformed_record" for d in letters)
    assert cli.json("dlq", "show", "archive.txt")[0]["attempts"] == 1

    (corpus / "archive.txt").write_text("Now the archive holds readable words about tea.")
    result = cli.json("dlq", "retry")
    assert result["remaining"] == 1  # the malformed line is still malformed
    assert "archive.txt#0" in _points(cli.store)
    assert cli.json("dlq", "purge")["purged"] == 1
    assert cli.json("dlq", "list") == []


def test_verify_finds_and_repairs_drift(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    assert cli.json("verify")[0]["ok"] is True
    with open_store(cli.store) as s:
        s.delete("default", ids=["a.txt#0"])
        fingerprint = s.get_collection("default").fingerprint
        s.upsert("default", ["ghost#0"], np.ones((1, 64), dtype=np.float32),
                 [{"doc_id": "ghost"}], fingerprint=fingerprint)
        s.upsert("default", ["sub/b.md#7"], np.ones((1, 64), dtype=np.float32),
                 [{"doc_id": "sub/b.md"}], fingerprint=fingerprint)
    proc = cli.run("verify", "--json", check=False)
    report = json.loads(proc.stdout)[0]
    assert proc.returncode == 1
    assert report["missing_points"] == ["a.txt#0"]
    assert report["unknown_points"] == ["ghost#0", "sub/b.md#7"]
    assert report["unowned_points"] == 1
    cli.run("verify", "--repair")
    # the stray chunk of a ledger document goes; a point the ledger never wrote stays
    assert "sub/b.md#7" not in _points(cli.store) and "ghost#0" in _points(cli.store)
    cli.run("verify", "--repair", "--delete-unknown")
    assert "ghost#0" not in _points(cli.store)
    healed = cli.ingest(str(corpus))
    assert healed["documents_new"] == 1  # a.txt was forgotten by the ledger, embedded again
    assert cli.json("verify")[0]["ok"] is True


def test_collections_and_ledger_agree(cli: Cli, corpus: Path) -> None:
    summary = cli.ingest(str(corpus), "--collection", "notes")
    rows = cli.json("collections")
    assert rows[0]["name"] == "notes"
    assert rows[0]["points"] == summary["chunks_embedded"]
    assert rows[0]["documents"] == 6 and rows[0]["model"] == "testing/hash-64"
    ledger = Ledger(cli.store, read_only=True)
    assert ledger.document_count("notes") == 6


def test_missing_path_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    proc = cli.run("ingest", str(tmp_path / "nope"), "--model", "testing/hash-64",
                   check=False)
    assert proc.returncode == 2
    assert "no such file or directory" in proc.stderr


def test_new_chunking_plan_rechunks_everything(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus), "--chunk-tokens", "32", "--overlap", "4")
    before = _points(cli.store)
    summary = cli.ingest(str(corpus), "--chunk-tokens", "16", "--overlap", "2")
    after = _points(cli.store)
    assert summary["documents_changed"] == 6 and summary["documents_unchanged"] == 0
    assert len(after) > len(before)
    long_ids = sorted((i for i in after if i.startswith("long.txt#")),
                      key=lambda i: int(i.split("#")[1]))
    assert long_ids == [f"long.txt#{n}" for n in range(len(long_ids))]
    assert cli.json("verify")[0]["ok"] is True


def test_unchanged_files_are_skipped_changed_ones_read(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    (corpus / "sub" / "b.md").write_text("# Dogs\n\nDogs enjoy long walks by the river.\n")
    summary = cli.ingest(str(corpus))
    assert summary["documents_changed"] == 1 and summary["documents_unchanged"] == 5
    # unchanged bytes would be rejected the same way again: not re-read, not re-counted
    assert summary["documents_failed"] == 0
    letters = {d["doc_id"]: d for d in cli.json("dlq", "list")}
    assert letters["archive.txt"]["attempts"] == 1


def test_status_summarises_the_store(cli: Cli, corpus: Path) -> None:
    assert cli.json("status")["exists"] is False
    summary = cli.ingest(str(corpus))
    status = cli.json("status")
    assert status["collections"] == 1 and status["points"] == summary["chunks_embedded"]
    assert status["documents"] == 6 and status["dead_letters"] == 2
    assert status["queue_depth"] == 0 and status["indexing_lag_s"] == 0.0


def test_same_id_from_two_files_is_one_document(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "dup"
    root.mkdir()
    long_text = " ".join(f"word{i}" for i in range(300))
    (root / "a.jsonl").write_text(json.dumps({"_id": "1", "text": long_text}) + "\n")
    (root / "b.jsonl").write_text(json.dumps({"_id": "1", "text": "short text here"}) + "\n")
    summary = cli.ingest(str(root), "--chunk-tokens", "32", "--overlap", "4")
    assert summary["documents_new"] == 1 and summary["documents_failed"] == 1
    ids = {i for i in _points(cli.store) if i.startswith("1#")}
    assert len(ids) == summary["chunks_embedded"] > 1  # a.jsonl's chunks, nothing of b's
    assert cli.json("verify")[0]["ok"] is True
    (letter,) = cli.json("dlq", "list")
    assert letter["reason"] == "duplicate_id" and letter["doc_id"] == "1@b.jsonl"


def test_retry_of_an_embedding_failure_keeps_the_document_id(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("A document about retrying dead letters.")
    ledger = Ledger(cli.store)
    ledger.record_dead_letter("default", "sub/a.txt", str(root / "sub" / "a.txt"), "embed",
                              "embedder_retryable", "503", root=str(root))
    ledger.close()
    cli.run("dlq", "retry", "--json", env_extra={"EMBEDOPS_MODEL": "testing/hash-64"})
    assert set(_points(cli.store)) == {"sub/a.txt#0"}
    assert cli.json("dlq", "list") == []
