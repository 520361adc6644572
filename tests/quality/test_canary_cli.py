"""`embedops canary …` through the real command: the alarm fires on a damaged collection
(points deleted behind the ledger's back), stays quiet on an untouched one, reaches a
real webhook, and `verify` reports the same damage as drift."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import embedops
from tests.e2e.conftest import Cli
from tests.quality.conftest import DOCS_QA, TEST_MODEL, Receiver


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    store = Cli(tmp_path / "store")
    store.ingest(str(DOCS_QA / "corpus.jsonl"), "--id-field", "_id", "--collection", "docs")
    return store


def _run(cli: Cli, name: str, env: dict[str, str]) -> tuple[int, dict, str]:
    proc = cli.run("canary", "run", name, "--json", check=False, env_extra=env)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _delete_share(store: Path, collection: str, share: float) -> list[str]:
    """Delete ``share`` of the collection's points in the store only (the ledger still
    claims them), as a crashed tool or a careless script would."""
    with embedops.open(store) as db:
        ids = sorted(p.id for page in db.scan(collection) for p in page)
        doomed = random.Random(7).sample(ids, int(len(ids) * share))
        assert db.delete(collection, ids=doomed) == len(doomed)
    return doomed


def test_deleted_points_fire_the_canary_and_verify_reports_them(
        cli: Cli, tmp_path: Path, receiver: Receiver) -> None:
    env = {"EMBEDOPS_ALERT_WEBHOOK": receiver.url}
    created = cli.json("canary", "create", "qa", "--synthetic", "60", "--collection", "docs")
    assert created["queries"] == 60 and created["synthetic"] is True

    code, first, _ = _run(cli, "qa", env)
    assert code == 0 and first["alert"] is False
    assert first["baseline_recall@10"] == first["recall@10"] > 0.5  # the first run sets it
    code, untouched, _ = _run(cli, "qa", env)
    assert code == 0 and untouched["alert"] is False and untouched["drop_points"] == 0
    assert untouched["baseline_run_id"] == first["run_id"]
    assert cli.run("verify", "--collection", "docs").returncode == 0
    assert receiver.calls == []

    doomed = _delete_share(tmp_path / "store", "docs", 0.4)
    code, damaged, stderr = _run(cli, "qa", env)
    assert code == 1 and damaged["alert"] is True
    assert damaged["drop_points"] > 2.0
    assert damaged["recall@10"] < first["recall@10"]
    assert set(damaged) >= {"recall@10", "ndcg@10", "baseline_recall@10", "drop_points",
                            "alert"}
    assert "alert (canary)" in stderr and "points below its baseline" in stderr
    [(path, content_type, body)] = receiver.calls
    assert path == "/hooks/embedops" and content_type.startswith("application/json")
    assert body["kind"] == "canary" and body["canary"] == "qa"
    assert body["collection"] == "docs" and body["recall@10"] == damaged["recall@10"]
    assert body["baseline_recall@10"] == first["recall@10"]
    assert body["drop_points"] == damaged["drop_points"] and body["threshold_points"] == 2.0
    assert body["time"] == damaged["ran_at"]

    verify = cli.run("verify", "--collection", "docs", "--json", check=False)
    assert verify.returncode == 1
    [report] = json.loads(verify.stdout)
    assert report["ok"] is False and sorted(report["missing_points"]) == sorted(doomed)

    history = cli.json("canary", "history", "qa")
    assert [r["alert"] for r in history["runs"]] == [False, False, True]
    assert [r["is_baseline"] for r in history["runs"]] == [True, False, False]
    assert history["runs"][-1]["recall@10"] == damaged["recall@10"]


def test_threshold_is_a_setting_and_baseline_resets(cli: Cli, tmp_path: Path) -> None:
    cli.json("canary", "create", "qa", "--synthetic", "60", "--collection", "docs")
    code, first, _ = _run(cli, "qa", {})
    _delete_share(tmp_path / "store", "docs", 0.4)
    code, lenient, _ = _run(cli, "qa", {"EMBEDOPS_CANARY_ALERT_DROP_POINTS": "99"})
    assert code == 0 and lenient["alert"] is False and lenient["drop_points"] > 2.0
    assert lenient["threshold_points"] == 99.0
    code, strict, _ = _run(cli, "qa", {})
    assert code == 1 and strict["alert"] is True

    reset = cli.json("canary", "baseline", "qa")
    assert reset["baseline_run_id"] == strict["run_id"]
    code, after, _ = _run(cli, "qa", {})
    assert code == 0 and after["alert"] is False and after["drop_points"] == 0
    assert after["baseline_recall@10"] == strict["recall@10"] != first["recall@10"]

    cli.json("canary", "baseline", "qa", "--clear")
    code, again, _ = _run(cli, "qa", {})
    assert again["baseline_run_id"] == again["run_id"]  # the next run set it


def test_a_canary_from_a_beir_directory_survives_its_files(cli: Cli, tmp_path: Path) -> None:
    copy = tmp_path / "qa-set"
    (copy / "qrels").mkdir(parents=True)
    for name in ("queries.jsonl", "qrels/test.tsv"):
        (copy / name).write_text((DOCS_QA / name).read_text())
    created = cli.json("canary", "create", "beir", "--from", str(copy), "--collection", "docs")
    assert created["queries"] == 40 and created["relevant_unknown"] == 0
    for name in ("queries.jsonl", "qrels/test.tsv"):
        (copy / name).unlink()
    report = cli.json("canary", "run", "beir")
    eval_report = cli.json("eval", "--dataset", str(DOCS_QA), "--collection", "docs",
                           "--model", TEST_MODEL)
    # the same queries through the same trec_eval code as `eval`: the same numbers
    assert report["recall@10"] == eval_report["recall@10"]
    assert report["ndcg@10"] == eval_report["ndcg@10"]
    listed = cli.json("canary", "list")
    assert [c["name"] for c in listed] == ["beir"] and listed[0]["queries"] == 40


def test_bad_usage_is_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    missing = cli.run("canary", "run", "nope", check=False)
    assert missing.returncode == 2 and "no canary 'nope'" in missing.stderr
    both = cli.run("canary", "create", "x", "--collection", "docs", check=False)
    assert both.returncode == 2 and "--synthetic" in both.stderr
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(json.dumps({"query": "tea", "relevant_ids": ["tea.md"]}) + "\n")
    unknown = cli.run("canary", "create", "x", "--from", str(jsonl), "--collection", "docs",
                      check=False)
    assert unknown.returncode == 2 and "none of the relevant ids" in unknown.stderr
    cli.json("canary", "create", "x", "--synthetic", "5", "--collection", "docs")
    taken = cli.run("canary", "create", "x", "--synthetic", "5", "--collection", "docs",
                    check=False)
    assert taken.returncode == 1 and "exists" in taken.stderr
