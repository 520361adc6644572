"""A 1,000-query canary on a large collection: how long a run takes, and the proof runs
(damage -> alert, repaired -> quiet) with their numbers.

The collection is synthetic: generated documents of two ten-word sentences over a
3,000-word vocabulary, one chunk each, embedded by the TEST-ONLY hashing model
``testing/hash-256`` (so the number measures the store, the search and the scoring, not
a neural model; a real model adds its query-embedding time: 1,000 short queries).
The canary is ``--synthetic 1000`` (one sentence or title per sampled document).

    EMBEDOPS_ENABLE_TEST_MODELS=1 .venv/bin/python bench/canary.py --documents 100000

Prints one JSON object. The collection is built once under ``--work`` and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import embedops
from embedops.client import Client
from embedops.embedders.testing import HashEmbedder
from embedops.ingest.reconcile import reconcile
from embedops.quality.canary import create_canary, run_canary

COLLECTION, CANARY = "bench", "bench"


class SwappedWeights(HashEmbedder):
    """The hashing model with its output dimensions shuffled, under the same identity
    and fingerprint: a model whose weights were replaced in place."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim=dim)
        self._order = np.random.default_rng(3).permutation(dim)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return super()._embed_batch(texts)[:, self._order]


def write_corpus(path: Path, documents: int) -> None:
    rng = random.Random(0)
    vocabulary = [f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}"
                  f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}{i}" for i in range(3000)]
    with path.open("w") as handle:
        for n in range(documents):
            text = " ".join(" ".join(rng.choices(vocabulary, k=10)).capitalize() + "."
                            for _ in range(2))
            handle.write(json.dumps({"_id": f"d{n:06d}", "text": text}) + "\n")


def build(work: Path, documents: int, model: str) -> dict[str, Any]:
    corpus = work / f"corpus-{documents}.jsonl"
    if not corpus.exists():
        write_corpus(corpus, documents)
    with embedops.open(work / "store") as client:
        started = time.perf_counter()
        summary = client.ingest([corpus], COLLECTION, model=model, id_field="_id")
        ingest_s = time.perf_counter() - started
        assert client.ledger is not None
        started = time.perf_counter()
        created = create_canary(client.store, client.ledger, CANARY, COLLECTION,
                                synthetic=1000, replace=True)
        create_s = time.perf_counter() - started
    return {"documents_new": summary.documents_new, "ingest_s": round(ingest_s, 1),
            "create_synthetic_1000_s": round(create_s, 2), "queries": created["queries"]}


def timed_runs(client: Client, runs: int) -> tuple[list[float], dict[str, Any]]:
    seconds, last = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        last = run_canary(client, CANARY)
        seconds.append(time.perf_counter() - started)
    return seconds, last


def cli_runs(store: Path, runs: int) -> list[float]:
    """Wall time of `embedops canary run` (process start, index load, run)."""
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "embedops", "--store", str(store), "canary",
                        "run", CANARY, "--json"], check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def verdict(run: dict[str, Any]) -> dict[str, Any]:
    return {k: run[k] for k in ("recall@10", "ndcg@10", "baseline_recall@10", "drop_points",
                                "alert", "seconds")}


def proofs(client: Client, share: float, dim: int) -> dict[str, Any]:
    """Each damage on its own, undone before the next: delete ``share`` of the points,
    overwrite ``share`` of the vectors with noise, swap the query model's weights."""
    info = client.get_collection(COLLECTION)
    ids = sorted(p.id for page in client.scan(COLLECTION, page_size=5000) for p in page)
    chosen = sorted(random.Random(1).sample(ids, int(len(ids) * share)))
    saved = client.get_points(COLLECTION, chosen, with_vectors=True)
    vectors = np.stack([p.vector for p in saved]).astype(np.float32)
    payloads = [p.payload for p in saved]
    out: dict[str, Any] = {"share": share, "points": len(ids), "damaged_points": len(chosen)}

    client.delete(COLLECTION, ids=chosen)
    out["deleted"] = verdict(run_canary(client, CANARY))
    out["deleted_verify"] = _verify(client, 0, None)
    client.upsert(COLLECTION, chosen, vectors, payloads, fingerprint=info.fingerprint)

    noise = np.random.default_rng(2).standard_normal(vectors.shape).astype(np.float32)
    client.upsert(COLLECTION, chosen, noise, payloads, fingerprint=info.fingerprint)
    out["noise"] = verdict(run_canary(client, CANARY))
    out["noise_verify"] = _verify(client, 1000, client.embedder(COLLECTION))
    client.upsert(COLLECTION, chosen, vectors, payloads, fingerprint=info.fingerprint)

    out["swapped_model"] = verdict(run_canary(client, CANARY, embedder=SwappedWeights(dim)))
    out["swapped_verify"] = _verify(client, 1000, SwappedWeights(dim))
    out["restored"] = verdict(run_canary(client, CANARY))
    out["restored_verify"] = _verify(client, 1000, client.embedder(COLLECTION))
    return out


def _verify(client: Client, sample: int, embedder: Any) -> dict[str, Any]:
    started = time.perf_counter()
    report = reconcile(client.store, client.ledger, COLLECTION, sample=sample,
                       embedder=embedder)
    return {"ok": report["ok"], "missing_points": len(report["missing_points"]),
            "sampled_chunks": report.get("sampled_chunks", 0),
            "vector_drift": len(report.get("vector_drift", [])),
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--share", type=float, default=0.1,
                        help="Share of the points each damage touches.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/embedops-bench-canary"))
    args = parser.parse_args()
    os.environ.setdefault("EMBEDOPS_ENABLE_TEST_MODELS", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} cores",
                              "load_before": os.getloadavg()[0],
                              "model": f"testing/hash-{args.dim}",
                              "build": build(args.work, args.documents, f"testing/hash-{args.dim}")}
    with embedops.open(args.work / "store") as client:
        client.ledger.set_canary_baseline(CANARY, None)  # type: ignore[union-attr]
        seconds, last = timed_runs(client, args.runs)
        result["points"] = client.count(COLLECTION)
        result["run_in_process_s"] = summary(seconds)
        result["run_reported_seconds"] = last["seconds"]  # embed + search + score
        result["untouched"] = verdict(last)
    result["run_cli_s"] = summary(cli_runs(args.work / "store", 3))
    with embedops.open(args.work / "store") as client:
        result["proofs"] = proofs(client, args.share, args.dim)
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
