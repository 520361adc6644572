"""The CLI over the reshaped core: queries embedded in the query role, `get` from the
ledger's durable content, stores chosen by URL, one model per collection, and read-only
commands beside a writer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from embedops.embedders import load_embedder
from embedops.store import open_store

from .conftest import Cli

E5 = "testing/hash-e5-64"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "cats.txt").write_text("Cats sleep most of the day in warm places.")
    (root / "dogs.txt").write_text("Dogs enjoy long walks in the park.")
    (root / "records.jsonl").write_text(
        '{"id": "r1", "text": "Green tea is steamed.", "lang": "en", "source": "crm"}\n')
    return root


def test_search_embeds_the_query_in_the_query_role(cli: Cli, corpus: Path) -> None:
    cli.json("ingest", str(corpus), "--model", E5, "--collection", "e5")
    hit = cli.json("search", "cats sleep", "--collection", "e5", "-k", "1")[0]
    embedder = load_embedder(E5, Path("."))
    with open_store(cli.store, read_only=True) as store:
        (point,) = store.get("e5", [hit["id"]], with_vectors=True)
    as_query = float(embedder.embed(["cats sleep"], "query")[0] @ point.vector)
    as_document = float(embedder.embed(["cats sleep"], "document")[0] @ point.vector)
    assert abs(as_query - as_document) > 1e-3  # the roles really differ for this model
    assert hit["score"] == pytest.approx(as_query, abs=1e-4)


def test_get_shows_the_document_the_ledger_keeps(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    doc = cli.json("get", "r1")
    assert doc["text"] == "Green tea is steamed." and doc["metadata"]["lang"] == "en"
    (chunk,) = doc["chunks"]
    assert chunk["text"] == doc["text"] and chunk["start"] == 0
    assert chunk["fingerprint"] == doc["fingerprint"] and chunk["last_embedded_at"]
    missing = cli.run("get", "nope", check=False)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_unknown_store_scheme_is_bad_usage_and_creates_nothing(tmp_path: Path,
                                                               corpus: Path) -> None:
    proc = Cli("nosuchdb:///tmp/m.db").run("ingest", str(corpus), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "known schemes: embedded" in proc.stderr and "Traceback" not in proc.stderr
    assert not Path("nosuchdb:").exists() and not (tmp_path / "nosuchdb:").exists()
    via_url = Cli(f"embedded://{tmp_path / 'url-store'}")
    assert via_url.ingest(str(corpus))["documents_new"] == 3
    assert (tmp_path / "url-store" / "ledger.db").exists()


def test_ingest_with_another_model_is_refused_naming_both(cli: Cli, corpus: Path) -> None:
    cli.ingest(str(corpus))
    proc = cli.run("ingest", str(corpus), "--model", "testing/hash-32", check=False)
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert "testing/hash-64" in message and "testing/hash-32" in message
    assert "embedops migrate" in message
    assert cli.ingest(str(corpus))["documents_unchanged"] == 3


def test_bad_usage_is_one_line_and_exit_2(cli: Cli, corpus: Path) -> None:
    for args in (("search", ""), ("ingest", str(corpus), "--backend", "gpu"),
                 ("ingest", str(corpus), "--chunk-tokens", "2")):
        proc = cli.run(*args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip(), args
    assert cli.json("ingest", str(corpus), "--backend", "onnx-int8", "--model",
                    "testing/hash-64")["documents_new"] == 3


def test_read_only_commands_work_while_a_writer_holds_the_store(cli: Cli,
                                                                corpus: Path) -> None:
    (corpus / "empty.txt").write_text("   ")
    cli.ingest(str(corpus))
    with open_store(cli.store) as writer:  # holds the single-writer lock, as `serve` does
        writer.count("default")
        assert [d["doc_id"] for d in cli.json("dlq", "list")] == ["empty.txt"]
        assert cli.json("dlq", "show", "empty.txt")[0]["reason"]
        assert cli.json("verify")[0]["ok"] is True
        assert cli.json("get", "cats.txt")["text"].startswith("Cats")
        assert cli.json("search", "dogs", "-k", "1")[0]["doc_id"] == "dogs.txt"
        locked = cli.run("verify", "--repair", check=False)
        assert locked.returncode == 1 and "store_locked" in locked.stderr


def test_user_metadata_with_a_reserved_name_is_kept_and_filterable(cli: Cli,
                                                                   corpus: Path) -> None:
    cli.ingest(str(corpus), "--id-field", "id")
    hits = cli.json("search", "tea", "--filter", 'metadata.source = "crm"')
    assert [h["doc_id"] for h in hits] == ["r1"]
    assert hits[0]["payload"]["source"] == "records.jsonl"  # embedops' own field stays
    assert hits[0]["payload"]["metadata"] == {"source": "crm"}


def test_folder_ingest_reports_files_and_refuses_an_empty_run(cli: Cli,
                                                              tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "p1", "text": "Passages are documents."}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "what is a passage"}\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\n")
    (beir / "logo.png").write_bytes(b"\x89PNG")
    summary = cli.ingest(str(beir), "--id-field", "_id")
    assert summary["documents_new"] == 1 and summary["files_taken"] == 1
    assert summary["files_found"] == 4
    assert summary["files_skipped"] == {"beir_queries_or_qrels": 2,
                                        "unsupported_type:.png": 1}
    assert cli.json("get", "p1")["text"] == "Passages are documents."
    only_images = tmp_path / "images"
    only_images.mkdir()
    (only_images / "a.png").write_bytes(b"\x89PNG")
    proc = cli.run("ingest", str(only_images), "--json", check=False)
    assert proc.returncode == 1 and "no document was taken" in proc.stderr
    assert json.loads(proc.stdout)["files_skipped"] == {"unsupported_type:.png": 1}
    assert cli.run("ingest", str(only_images), "--allow-empty", check=False).returncode == 0


def test_api_base_flag_reaches_the_openai_compatible_endpoint(cli: Cli, corpus: Path) -> None:
    from tests.server.fault_server import FaultServer

    model = "openai-compatible/hash"
    with FaultServer() as api:
        embedded = cli.json("embed", "hello there", "--model", model, "--api-base", api.url)
        assert embedded["model"]["name"] == model and len(embedded["embeddings"][0]) == 64
        summary = cli.json("ingest", str(corpus), "--model", model, "--api-base", api.url)
        assert summary["documents_new"] == 3
        hits = cli.json("search", "cats", "--api-base", api.url, "-k", "1")
        assert hits[0]["doc_id"] == "cats.txt"
    assert any("hello there" in t for s in api.seen for t in s.items)
    assert any(t == "cats" for s in api.seen for t in s.items)


def test_status_and_tables_tell_the_whole_truth_when_piped(cli: Cli, corpus: Path) -> None:
    long_name = "a-collection-name-long-enough-to-be-cut-at-eighty-columns-by-a-narrow-table"
    cli.ingest(str(corpus), "--collection", long_name)
    status = cli.run("status").stdout
    assert "None" not in status and "indexing lag s │ 0.0" in " ".join(status.split())
    assert cli.json("status")["indexing_lag_s"] == 0.0
    assert long_name in cli.run("collections").stdout  # piped: no 80-column cut


@pytest.mark.slow
def test_models_prepare_says_what_it_does_once_and_nothing_else(
        tmp_path: Path,
        model_cache_prepared: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    # the first run is the one that prepared the session's cache while it was empty
    cache, first = model_cache_prepared
    assert first.returncode == 0, first.stderr
    cli = Cli(tmp_path / "store")
    env = {"EMBEDOPS_CACHE_DIR": str(cache)}
    graphs = json.loads(first.stdout)[0]["graphs"]
    assert all(Path(g).is_file() for g in graphs) and len(graphs) == 2
    assert "preparing all-MiniLM-L6-v2 for the CPU" in first.stderr
    for noise in ("Warning", "Traceback", "Loading weights", "%|"):
        assert noise not in first.stderr, noise
    again = cli.run("models", "--prepare", "all-MiniLM-L6-v2", env_extra=env)
    assert "preparing" not in again.stderr and "ready" in again.stdout


def test_progress_counts_documents_and_chunks_apart_on_stderr() -> None:
    """Documents read and chunks embedded are two bars; the chunk bar's total grows as
    documents are chunked, so its ETA comes from chunks, not files."""
    from embedops.cli.context import err_console
    from embedops.cli.ingest_cmd import _progress

    progress = _progress(quiet=False)
    assert progress.bar is not None and progress.bar.console is err_console
    with progress as report:
        report("files", 3)
        report("document", 2)
        report("planned", 40)
        report("planned", 60)
        report("chunks", 25)
        bar = progress.bar
        documents, chunks = bar.tasks[progress.documents], bar.tasks[progress.chunks]
        assert (documents.completed, chunks.completed, chunks.total) == (2, 25, 100)
        assert chunks.fields["rate"].endswith("chunks/s")
