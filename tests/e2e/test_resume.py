"""kill -9 at random moments, run again: the store equals an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from tests.e2e.conftest import Cli

MODEL = "all-MiniLM-L6-v2"  # the real default model: resuming must reproduce its vectors


def _corpus(root: Path, n: int) -> Path:
    rng = random.Random(7)
    words = ("index", "vector", "graph", "chunk", "model", "token", "ledger", "batch", "query",
             "recall", "store", "payload", "cosine", "latency", "shard", "replica", "tensor",
             "kernel")
    lines = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 60)))
        lines.append(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": text + "."}))
    path = root / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest_cmd(store: Path, corpus: Path) -> list[str]:
    return [sys.executable, "-m", "embedops", "--store", str(store), "ingest", str(corpus),
            "--model", MODEL, "--batch-size", "16", "--json"]


def _snapshot(store: Path) -> dict[str, tuple[np.ndarray, str]]:
    with open_store(store, read_only=True) as s:
        return {p.id: (p.vector, p.payload["doc_id"])
                for page in s.scan("default", with_vectors=True) for p in page}


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path: Path, model_cache: Path) -> None:
    corpus = _corpus(tmp_path, 600)
    env_cache = ["env", f"EMBEDOPS_CACHE_DIR={model_cache}"]
    reference = tmp_path / "reference"
    subprocess.run(env_cache + _ingest_cmd(reference, corpus), check=True,
                   capture_output=True, timeout=600)
    expected = _snapshot(reference)
    assert len(expected) == 600

    store = tmp_path / "killed"
    rng = random.Random(11)
    kills = 0
    for _ in range(8):  # each run resumes the last; kill it at a random moment
        proc = subprocess.Popen(env_cache + _ingest_cmd(store, corpus),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.5, 2.0))
        if proc.poll() is not None:  # it finished first: it must have finished cleanly
            assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        if kills == 5:
            break
    assert kills >= 2, "the ingest finished before it could be killed; enlarge the corpus"

    cli = Cli(store)
    final = json.loads(subprocess.run(env_cache + _ingest_cmd(store, corpus), check=True,
                                      capture_output=True, text=True, timeout=600).stdout)
    got = _snapshot(store)
    assert sorted(got) == sorted(expected)  # same ids, no duplicates, no orphans
    for point_id, (vector, doc_id) in expected.items():
        assert got[point_id][1] == doc_id
        assert float(got[point_id][0] @ vector) > 0.9999
    assert final["documents_new"] + final["documents_unchanged"] == 600
    assert cli.json("verify")[0]["ok"] is True
