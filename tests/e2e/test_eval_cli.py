"""`embedops eval` over BEIR-format data through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedops.errors import InputRejected
from embedops.quality.beir import (
    SHIPPED_DIR,
    load_corpus,
    load_qrels,
    load_queries,
    resolve_dataset,
    shipped_datasets,
)
from tests.e2e.conftest import TEST_MODEL, Cli


def _beir(root: Path) -> Path:
    topics = {
        "tea": "Green tea and black tea come from the same plant.",
        "rust": "Rust guarantees memory safety without garbage collection.",
        "volcano": "A volcano erupts when magma rises to the surface.",
        "piano": "The piano has eighty-eight keys, black and white.",
    }
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as f:
        for i, (key, text) in enumerate(topics.items()):
            f.write(json.dumps({"_id": key, "title": key.title(), "text": text}) + "\n")
            f.write(json.dumps({"_id": f"noise{i}", "title": "", "text": f"Filler {i}."}) + "\n")
    queries = {"q1": "green tea plant", "q2": "magma volcano erupts", "q3": "no judgments"}
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t in queries.items()) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\ttea\t1\nq2\tvolcano\t2\n")
    return root


def test_eval_ingests_then_scores(cli: Cli, tmp_path: Path) -> None:
    dataset = _beir(tmp_path / "tiny")
    report = cli.json("eval", "--dataset", str(dataset), "--model", TEST_MODEL)
    assert set(report) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert report["queries"] == 2  # the unjudged query is left out (BEIR convention)
    assert report["ndcg@10"] == pytest.approx(1.0)
    assert report["mrr@10"] == pytest.approx(1.0)
    assert report["ingest"]["documents_new"] == 8
    again = cli.json("eval", "--dataset", str(dataset), "--model", TEST_MODEL)
    assert again["ingest"]["chunks_embedded"] == 0  # the collection was current
    assert again["ndcg@10"] == report["ndcg@10"]


def test_eval_missing_files_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    proc = cli.run("eval", "--dataset", str(tmp_path), "--model", TEST_MODEL, check=False)
    assert proc.returncode == 2
    assert "not found" in proc.stderr


# nDCG@10 measured on the shipped docs-qa set (40 judged queries); each floor sits below it.
# The hashing model only sees word overlap: 0.161. all-MiniLM-L6-v2 (onnx-int8): 0.774.
HASH_NDCG_FLOOR = 0.13
MINILM_NDCG_FLOOR = 0.65


def test_shipped_dataset_is_found_by_name_and_a_directory_wins(tmp_path: Path) -> None:
    assert "docs-qa" in shipped_datasets()
    shipped = resolve_dataset("docs-qa")
    assert shipped == SHIPPED_DIR / "docs-qa"
    assert len(load_queries(shipped)) == 40
    assert set().union(*load_qrels(shipped).values()) <= set(load_corpus(shipped))
    own = tmp_path / "docs-qa"
    own.mkdir()
    assert resolve_dataset(own) == own
    with pytest.raises(InputRejected, match="shipped: docs-qa"):
        resolve_dataset(tmp_path / "absent")


def test_qrels_are_read_with_and_without_a_header(tmp_path: Path) -> None:
    body = "q1\td1\t2\nq1\td2\t1\nq2\td3\t1\n"
    for name, text in (("with", "query-id\tcorpus-id\tscore\n" + body), ("without", body)):
        (tmp_path / name / "qrels").mkdir(parents=True)
        (tmp_path / name / "qrels" / "test.tsv").write_text(text)
        assert load_qrels(tmp_path / name) == {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}}


def test_eval_on_the_shipped_set_by_name(cli: Cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./docs-qa here: the name means the shipped set
    report = cli.json("eval", "--dataset", "docs-qa", "--model", TEST_MODEL)
    assert report["queries"] == 40
    assert report["collection"] == "docs-qa"
    assert report["ingest"]["documents_new"] == 70
    assert report["ingest"]["documents_failed"] == 0
    assert report["ndcg@10"] >= HASH_NDCG_FLOOR
    assert report["recall@100"] == pytest.approx(1.0)  # 70 passages: all are retrieved


@pytest.mark.slow
def test_eval_with_the_real_model_on_the_shipped_set(cli: Cli, model_cache: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = json.loads(cli.run(
        "eval", "--dataset", "docs-qa", "--model", "all-MiniLM-L6-v2", "--json",
        env_extra={"EMBEDOPS_CACHE_DIR": str(model_cache)}).stdout)
    assert report["model"] == "all-MiniLM-L6-v2"
    assert report["queries"] == 40
    assert report["ingest"]["documents_failed"] == 0
    assert report["ndcg@10"] >= MINILM_NDCG_FLOOR
    assert report["recall@10"] >= 0.75
