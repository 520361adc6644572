"""`embedops eval` over BEIR-format data through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_eval_with_the_real_model_on_business_reports(cli: Cli, shared_data: Path,
                                                      model_cache: Path) -> None:
    report = json.loads(cli.run(
        "eval", "--dataset", str(shared_data / "business-reports"), "--json",
        env_extra={"EMBEDOPS_CACHE_DIR": str(model_cache)}).stdout)
    assert report["queries"] == 11
    assert report["ingest"]["documents_failed"] == 0
    assert 0.0 < report["recall@100"] <= 1.0
