"""Where a canary's queries come from (files, or the collection itself), how the ledger
keeps them and their runs, and that a seed-sized canary stays fast."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

import pytest

import embedops
from embedops.client import Client
from embedops.errors import InputRejected
from embedops.ledger import Ledger
from embedops.ledger.canaries import CanaryExists, CanaryNotFound, CanaryQuery
from embedops.ledger.schema import MIGRATIONS
from embedops.quality.canary import (
    canary_history,
    create_canary,
    run_canary,
    set_baseline,
    top_documents,
)
from embedops.quality.canary_sets import load_query_set
from embedops.quality.synthetic import synthetic_queries
from embedops.retrieval import Searcher, doc_scores
from embedops.sqlite_migrations import apply_migrations
from tests.quality.conftest import DOCS_QA, TEST_MODEL, ingest_docs_qa


def test_a_beir_directory_gives_its_judged_queries_only(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in [
        {"_id": "a", "text": "green tea"}, {"_id": "b", "text": "unjudged"},
        {"_id": "c", "text": "judged not relevant"}]))
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                 "a\ttea\t2\na\tcoffee\t0\nc\tx\t0\n")
    assert load_query_set(tmp_path) == [CanaryQuery("a", "green tea",
                                                    {"tea": 2, "coffee": 0})]
    assert len(load_query_set(DOCS_QA)) == 40


def test_a_jsonl_file_takes_lists_and_graded_objects(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"query": "tea", "relevant_ids": ["t1", "t2"]}) + "\n\n"
                    + json.dumps({"id": "x", "query": "rust", "relevant_ids": {"r": 2}}) + "\n")
    assert load_query_set(path) == [CanaryQuery("q00001", "tea", {"t1": 1, "t2": 1}),
                                    CanaryQuery("x", "rust", {"r": 2})]
    path.write_text(json.dumps({"query": "tea", "relevant_ids": ["t1"]}) + "\n{not json\n")
    with pytest.raises(InputRejected, match="line 2"):
        load_query_set(path)
    path.write_text(json.dumps({"query": "tea", "relevant": ["t1"]}) + "\n")
    with pytest.raises(InputRejected, match="relevant_ids"):
        load_query_set(path)
    with pytest.raises(InputRejected, match="not found"):
        load_query_set(tmp_path / "absent.jsonl")


def test_synthetic_queries_come_from_their_own_document(docs_client: Client) -> None:
    ledger = docs_client.ledger
    assert ledger is not None
    queries = synthetic_queries(ledger, "docs", 50, seed=1)
    assert len(queries) == 50 and len({q.text.casefold() for q in queries}) == 50
    for q in queries:
        [(doc_id, grade)] = q.relevant.items()
        doc = ledger.stored("docs", doc_id)
        assert doc is not None and doc.text is not None and grade == 1
        words = " ".join(doc.text.split())
        assert q.text in words or q.text == " ".join((doc.title or "").split())
    assert synthetic_queries(ledger, "docs", 50, seed=1) == queries  # a seed repeats
    assert synthetic_queries(ledger, "docs", 50, seed=2) != queries
    everything = synthetic_queries(ledger, "docs", 500)
    assert 60 < len(everything) <= 70  # one per document at most (some have no sentence)
    assert len({doc for q in everything for doc in q.relevant}) == len(everything)


def test_a_canary_lives_in_the_ledger(docs_client: Client, tmp_path: Path) -> None:
    ledger = docs_client.ledger
    assert ledger is not None
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"query": "how do I run the tests",
                                "relevant_ids": ["readme/two-commands"]}) + "\n")
    created = create_canary(docs_client.store, ledger, "one", "docs", source=path)
    assert created["queries"] == 1 and created["relevant_unknown"] == 0
    path.unlink()
    with pytest.raises(CanaryExists):
        create_canary(docs_client.store, ledger, "one", "docs", synthetic=3)
    create_canary(docs_client.store, ledger, "one", "docs", synthetic=3, replace=True)
    run_canary(docs_client, "one")
    docs_client.close()

    with embedops.open(tmp_path / "store", read_only=True) as reader:
        again = Ledger(tmp_path / "store" / "ledger.db")  # a writable handle of its own
        result = run_canary(reader, "one", ledger=again)
        history = canary_history(again, "one")
        assert [r["run_id"] for r in history["runs"]] == [1, 2]
        assert history["synthetic"] is True and history["queries"] == 3
        assert result["baseline_run_id"] == 1
        assert set_baseline(again, "one")["baseline_run_id"] == 2
        with pytest.raises(InputRejected, match="no run 99"):
            set_baseline(again, "one", 99)
        again.delete_canary("one")
        with pytest.raises(CanaryNotFound):
            run_canary(reader, "one", ledger=again)
        again.close()


def test_an_alias_canary_follows_the_alias(docs_client: Client) -> None:
    ingest_docs_qa(docs_client, "docs-b")
    docs_client.create_alias("live", "docs")
    assert docs_client.ledger is not None
    create_canary(docs_client.store, docs_client.ledger, "live", "live", synthetic=20)
    assert run_canary(docs_client, "live")["collection"] == "docs"
    docs_client.repoint_alias("live", "docs-b")
    moved = run_canary(docs_client, "live")
    assert moved["collection"] == "docs-b" and moved["target"] == "live"


def _corpus(path: Path, documents: int) -> Path:
    rng = random.Random(0)
    vocabulary = [f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}"
                  f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}{i}" for i in range(3000)]
    with path.open("w") as handle:
        for n in range(documents):
            sentences = [" ".join(rng.choices(vocabulary, k=10)).capitalize() + "."
                         for _ in range(3)]
            handle.write(json.dumps({"_id": f"d{n}", "text": " ".join(sentences)}) + "\n")
    return path


def test_a_thousand_query_canary_stays_fast(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", 1500)
    with embedops.open(tmp_path / "store") as client:
        client.ingest([corpus], "big", model="testing/hash-256", id_field="_id")
        assert client.ledger is not None
        created = create_canary(client.store, client.ledger, "big", "big", synthetic=1000)
        assert created["queries"] == 1000
        started = time.perf_counter()
        result = run_canary(client, "big")
        elapsed = time.perf_counter() - started
    assert result["queries"] == 1000 and result["recall@10"] > 0.9
    # measured about 1 s on 2 cores (see docs/benchmarks.md); the bound is for slow CI
    assert elapsed < 20


def test_the_test_model_is_the_one_recorded(docs_client: Client) -> None:
    assert docs_client.ledger is not None
    create_canary(docs_client.store, docs_client.ledger, "m", "docs", synthetic=5)
    result = run_canary(docs_client, "m")
    info = docs_client.get_collection("docs")
    assert (result["model"], result["fingerprint"], result["dtype"], result["metric"]) == \
        (TEST_MODEL, info.fingerprint, "float32", "cosine")
    assert result["index_params"] == info.index_params and result["points"] == info.points


def test_documents_rank_as_a_full_depth_search_ranks_them(docs_client: Client) -> None:
    info = docs_client.get_collection("docs")
    searcher = Searcher(docs_client.store, info, docs_client.embedder("docs"))
    texts = ["how do I run the tests", "int8 quantization", "dead letters and retries"]
    full = searcher.search_vectors(texts, k=info.points)
    for n in (10, 40):  # 40 documents need more than the first 30 chunk hits: deeper
        expected = [dict(sorted(doc_scores(h).items(), key=lambda kv: -kv[1])[:n])
                    for h in full]
        got = top_documents(searcher, texts, n)
        assert [list(d) for d in got] == [list(d) for d in expected]
        assert all(len(d) == n for d in got)


def test_a_ledger_from_before_exact_canaries_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, [m for m in MIGRATIONS if m[0] < 10])
    conn.execute("INSERT INTO canaries (name, collection, source, created_at) VALUES"
                 " ('old', 'docs', 'x.jsonl', 'then')")
    conn.close()
    ledger = Ledger(path)
    try:
        assert ledger.canary("old").exact is False
        ledger.create_canary("new", "docs", "y", [CanaryQuery("q", "tea", {"t": 1})],
                             exact=True)
        assert ledger.canary("new").exact is True
    finally:
        ledger.close()
