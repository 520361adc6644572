"""Scale-out fixtures: a local Ray cluster of two CPUs (one per test session), a small
corpus, and the state of a store (points, ledger, dead letters) to compare runs by."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedops.ingest.reconcile import reconcile
from embedops.ledger import Ledger
from embedops.store import open_store

TEST_MODEL = "testing/hash-64"
WORDS = ("index", "vector", "graph", "chunk", "model", "token", "ledger", "batch", "query",
         "recall", "store", "payload", "cosine", "latency", "shard", "replica", "tensor")


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[Any]:
    """``ray.init(num_cpus=2)`` once for these tests; the workers see the test-model
    switch. Its processes are children of this one, and it stops after the last test
    here."""
    ray = pytest.importorskip("ray")
    from embedops.ingest.ray_runner import USAGE_STATS_ENV, worker_env

    with pytest.MonkeyPatch.context() as env:
        env.setenv(USAGE_STATS_ENV, "0")  # the cluster starts offline
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": worker_env()})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="package")
def ray_address(ray_cluster: Any) -> str:
    """The address an ``embedops ingest --runner ray --ray-address`` process joins the
    cluster of ``ray_cluster`` by. Ray's authentication mode, which ``ray.init`` puts
    in this process's environment, reaches the command with that environment."""
    return str(ray_cluster.get_runtime_context().gcs_address)


def write_corpus(root: Path, files: int = 4, docs: int = 60, seed: int = 7) -> Path:
    """JSONL parts (one malformed line each), a text file, an HTML page, an
    undecodable file and one id given by two files: every path of the stages."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = [json.dumps({"_id": f"p{f}-{i}", "title": f"Doc {i}",
                             "text": " ".join(rng.choice(WORDS)
                                              for _ in range(rng.randint(5, 160))) + ".",
                             "metadata": {"part": f, "n": i}})
                 for i in range(docs)]
        (root / f"part{f}.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n")
    (root / "notes.txt").write_text("Cats sleep most of the day in warm places. " * 40)
    (root / "page.html").write_text("<html><head><title>Rust</title></head><body><p>Rust "
                                    "prevents data races at compile time.</p></body></html>")
    (root / "archive.txt").write_bytes(gzip.compress(b"hidden text " * 100))
    (root / "dup.jsonl").write_text(json.dumps({"_id": "p0-1", "text": "another one"}) + "\n")
    return root


@dataclass
class State:
    """What a run left behind, minus the times."""

    vectors: dict[str, np.ndarray]
    payloads: dict[str, dict[str, Any]]
    documents: dict[str, tuple[Any, ...]]
    letters: list[tuple[Any, ...]]
    verify: dict[str, Any]


def state(store: Path | str, collection: str = "default", ledger_path: Path | None = None
          ) -> State:
    """The state of the store at ``store`` (a directory or a URL) and its ledger (beside
    an embedded store unless ``ledger_path`` is given)."""
    with open_store(store, read_only=True) as opened:
        points = [p for page in opened.scan(collection, with_vectors=True) for p in page]
        ledger = Ledger(ledger_path or Path(store))
        try:
            report = reconcile(opened, ledger, collection)
            docs = ledger.documents(collection)
            letters = ledger.dead_letters(collection)
        finally:
            ledger.close()
    skip = {"last_embedded_at"}
    return State(
        {p.id: np.asarray(p.vector) for p in points},
        {p.id: {k: v for k, v in p.payload.items() if k not in skip} for p in points},
        {d: (r.content_hash, r.meta_hash, r.chunk_count, r.source, r.fingerprint, r.plan)
         for d, r in docs.items()},
        sorted((x.doc_id, x.source, x.stage, x.reason, x.detail) for x in letters),
        report)


def assert_same_state(got: State, expected: State) -> None:
    """Same ids, payloads, ledger records and dead letters; vectors within float noise;
    verify clean."""
    assert sorted(got.vectors) == sorted(expected.vectors)
    for point_id, vector in expected.vectors.items():
        np.testing.assert_allclose(got.vectors[point_id], vector, atol=1e-6)
    assert got.payloads == expected.payloads
    assert got.documents == expected.documents
    assert got.letters == expected.letters
    assert got.verify["ok"] is True, got.verify


def summary_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's ``--json`` summary without its timings."""
    return {k: v for k, v in summary.items() if k not in ("seconds", "chunks_per_second")}
