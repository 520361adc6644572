"""`embedops finetune` end to end on a tiny model: the trained model differs from its base,
metrics ask held-out queries only, the model registers by name, and a migration to it
runs through the evaluation gate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from tests.e2e.conftest import Cli

from embedops.finetune.evaluate import retrieval_metrics
from embedops.finetune.lineage import METRIC_TOLERANCE
from embedops.finetune.pairs import beir_corpus, pairs_from_beir, write_pairs
from embedops.finetune.pipeline import train_model
from embedops.finetune.trainer import Hyperparameters, load_sentence_transformer

TRAIN_ARGS = ["--epochs", "2", "--lr", "1e-3", "--batch-size", "16", "--hard-negatives", "3",
              "--eval-split", "0.25"]


@pytest.fixture
def env(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test session's model cache (registrations stay out of the user's; shipped
    weights are prepared once) and the torch engine, for the CLI subprocesses too."""
    monkeypatch.setenv("EMBEDOPS_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("EMBEDOPS_BACKEND", "torch")
    return model_cache


def _tensors(directory: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


@pytest.mark.slow
def test_train_register_and_migrate(tmp_path: Path, env: Path, tiny_model: Path,
                                    domain: Path) -> None:
    cli = Cli(tmp_path / "store")
    pairs_file = tmp_path / "pairs.jsonl"
    made = cli.json("finetune", "pairs", "--from", str(domain), "--out", str(pairs_file))
    assert made == {"out": str(pairs_file), "pairs": 60, "queries": 60, "synthetic": 0}
    out = tmp_path / "models" / "parts-ft"
    record = cli.json("finetune", "train", "--pairs", str(pairs_file), "--base",
                      str(tiny_model), "--out", str(out), "--ablation", *TRAIN_ARGS)
    assert json.loads((out / "training.json").read_text()) == record

    # lineage: data version, base, hyperparameters
    data = record["training_data"]
    assert data["pairs_sha256"] == hashlib.sha256(pairs_file.read_bytes()).hexdigest()
    assert len(data["negatives_sha256"]) == 64 and data["negatives_mined"] > 0
    assert record["hyperparameters"]["hard_negatives"] == 3
    assert record["base_model"]["fingerprint"] != record["fingerprint"]

    # no leakage: the held-out queries are the only ones measured, none was trained on
    train_ids = set(record["split"]["train_query_ids"])
    held_ids = set(record["split"]["held_out_query_ids"])
    assert not train_ids & held_ids and len(held_ids) == 15 and len(train_ids) == 45
    for key in ("before", "after", "after_without_hard_negatives"):
        assert record["metrics"][key]["queries"] == len(held_ids)
    pairs = pairs_from_beir(domain)
    held = [p for p in pairs if p.query_id in held_ids]
    base = load_sentence_transformer(tiny_model, seed=0)
    again = retrieval_metrics(base, {p.query_id: p.query for p in held},
                              {p.query_id: {p.positive_id: 1} for p in held},
                              beir_corpus(domain))
    assert again == record["metrics"]["before"]

    # the trained model differs from its base
    before, after = _tensors(tiny_model), _tensors(out)
    assert before.keys() == after.keys()
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    assert record["metrics"]["after"] != record["metrics"]["before"]

    # registered under its own name, listed with its lineage
    listed = {r["name"]: r for r in cli.json("models")}
    assert listed["parts-ft"]["fingerprint"] == record["fingerprint"]
    assert "fine-tuned from" in listed["parts-ft"]["note"]

    # rolled out by a migration, gated on the held-out queries
    cli.ingest(str(domain / "corpus.jsonl"), "--id-field", "_id", "--collection", "kb")
    started = cli.json("migrate", "start", "kb", "--to", "parts-ft")
    assert started["phase"] == "ready" and started["documents_done"] == 60
    assert started["model"] == "parts-ft"
    gated = cli.run("migrate", "evaluate", "kb", "--dataset", str(out / "heldout"), "--json",
                    check=False)  # exit 1 when the gate fails: a tiny model may well fail it
    report = json.loads(gated.stdout)
    assert gated.returncode == (0 if report["gate_passed"] else 1)
    assert report["shadow"]["queries"] == 15 and report["shadow"]["model"] == "parts-ft"
    assert report["shadow"]["fingerprint"] == record["fingerprint"]
    assert cli.json("migrate", "swap", "kb", "--force")["phase"] == "swapped"
    hits = cli.json("search", "which gasket ring goes in the digger", "--collection", "kb",
                    "-k", "3")
    assert len(hits) == 3 and hits[0]["payload"]["fingerprint"] == record["fingerprint"]


@pytest.mark.slow
def test_same_pairs_seed_and_settings_give_the_same_metrics(tmp_path: Path, env: Path,
                                                             tiny_model: Path,
                                                             domain: Path) -> None:
    pairs_file = tmp_path / "pairs.jsonl"
    write_pairs(pairs_from_beir(domain), pairs_file)
    params = Hyperparameters(epochs=1, lr=1e-3, batch_size=16, hard_negatives=2, seed=5)
    runs = [train_model(pairs_file, tmp_path / f"repro-{i}", env, base=str(tiny_model),
                        params=params, eval_split=0.25, progress=False) for i in (1, 2)]
    first, second = (r["metrics"]["after"] for r in runs)
    for key in ("recall@10", "ndcg@10"):
        assert abs(first[key] - second[key]) <= METRIC_TOLERANCE
    assert runs[0]["training_data"]["negatives_sha256"] == \
        runs[1]["training_data"]["negatives_sha256"]
    assert runs[0]["split"] == runs[1]["split"]


def test_bad_usage_exits_2_with_one_clear_line(tmp_path: Path, env: Path, domain: Path) -> None:
    cli = Cli(tmp_path / "store")
    pairs_file = tmp_path / "pairs.jsonl"
    write_pairs(pairs_from_beir(domain), pairs_file)
    bad_name = cli.run("finetune", "train", "--pairs", str(pairs_file), "--out",
                       str(tmp_path / "m"), "--name", "team/model", check=False)
    assert bad_name.returncode == 2 and "invalid model name" in bad_name.stderr
    taken = cli.run("finetune", "train", "--pairs", str(pairs_file), "--out",
                    str(tmp_path / "all-MiniLM-L6-v2"), check=False)
    assert taken.returncode == 2 and "shipped model" in taken.stderr
    missing = cli.run("finetune", "train", "--pairs", str(tmp_path / "none.jsonl"), "--out",
                      str(tmp_path / "m"), check=False)
    assert missing.returncode == 2 and "file not found" in missing.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    occupied = cli.run("finetune", "train", "--pairs", str(pairs_file), "--out",
                       str(tmp_path / "notes"), check=False)
    assert occupied.returncode == 2 and "not a model directory" in occupied.stderr
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "m").exists()
