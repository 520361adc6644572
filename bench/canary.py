"""A 1,000-query canary on a large collection: how long a run takes, and the proof runs
(damage -> alert, repaired -> quiet) with their numbers.

The collection is synthetic: generated documents of two ten-word sentences over a
3,000-word vocabulary, one chunk each, embedded by the TEST-ONLY hashing model
``testing/hash-256`` (so the number measures the store, the search and the scoring, not
a neural model; a real model adds its query-embedding time: 1,000 short queries).
Two canaries of ``--synthetic 1000`` queries (one sentence or title per sampled
document): a served one (through the ANN index) and an ``--exact`` one.

    flock /tmp/embedops-bench.lock env EMBEDOPS_ENABLE_TEST_MODELS=1 \
        .venv/bin/python bench/canary.py --documents 100000 --runs 5 --shares 0.1,0.3

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
from embedops.quality.canary import create_canary, run_canary, set_baseline
from machine_info import machine  # (bench/)

COLLECTION = "bench"
SERVED, EXACT = "bench", "bench-exact"  # through the ANN index as users search; exact


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
        created = create_canary(client.store, client.ledger, SERVED, COLLECTION,
                                synthetic=1000, replace=True)
        create_s = time.perf_counter() - started
        create_canary(client.store, client.ledger, EXACT, COLLECTION, synthetic=1000,
                      exact=True, replace=True)
    return {"documents_new": summary.documents_new, "ingest_s": round(ingest_s, 1),
            "create_synthetic_1000_s": round(create_s, 2), "queries": created["queries"]}


def timed_runs(client: Client, name: str, runs: int) -> tuple[list[float], dict[str, Any]]:
    seconds, last = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        last = run_canary(client, name)
        seconds.append(time.perf_counter() - started)
    return seconds, last


def cli_runs(store: Path, runs: int) -> list[float]:
    """Wall time of `embedops canary run` (process start, index load, run)."""
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "embedops", "--store", str(store), "canary",
                        "run", SERVED, "--json"], check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def verdict(run: dict[str, Any]) -> dict[str, Any]:
    return {k: run[k] for k in ("recall@10", "ndcg@10", "baseline_recall@10", "drop_points",
                                "alert", "seconds")}


def proofs(client: Client, shares: list[float], dim: int) -> dict[str, Any]:
    """Each damage on its own, undone before the next, both canaries measured against a
    baseline taken right before it: delete a share of the points, overwrite a share of
    the vectors with noise (payloads and fingerprint kept), swap the query model."""
    info = client.get_collection(COLLECTION)
    ids = sorted(p.id for page in client.scan(COLLECTION, page_size=5000) for p in page)
    out: dict[str, Any] = {"points": len(ids)}
    for share in shares:
        chosen = sorted(random.Random(1).sample(ids, int(len(ids) * share)))
        saved = client.get_points(COLLECTION, chosen, with_vectors=True)
        vectors = np.stack([p.vector for p in saved]).astype(np.float32)
        payloads = [p.payload for p in saved]

        def restore(chosen: list[str] = chosen, vectors: np.ndarray = vectors,
                    payloads: list[dict[str, Any]] = payloads) -> None:
            client.upsert(COLLECTION, chosen, vectors, payloads, fingerprint=info.fingerprint)

        _rebase(client)
        client.delete(COLLECTION, ids=chosen)
        out[f"deleted_{share}"] = _damaged(client, 0, None)
        restore()
        _rebase(client)
        noise = np.random.default_rng(2).standard_normal(vectors.shape).astype(np.float32)
        client.upsert(COLLECTION, chosen, noise, payloads, fingerprint=info.fingerprint)
        out[f"noise_{share}"] = _damaged(client, 1000, client.embedder(COLLECTION))
        restore()
    _rebase(client)
    out["swapped_model"] = _damaged(client, 1000, SwappedWeights(dim), SwappedWeights(dim))
    out["untouched"] = _damaged(client, 1000, client.embedder(COLLECTION))
    return out


def _rebase(client: Client) -> None:
    """A fresh run of each canary becomes its baseline."""
    assert client.ledger is not None
    for name in (SERVED, EXACT):
        set_baseline(client.ledger, name, run_canary(client, name, notify=False)["run_id"])


def _damaged(client: Client, sample: int, verify_with: Any,
             query_model: Any = None) -> dict[str, Any]:
    return {"served": verdict(run_canary(client, SERVED, embedder=query_model)),
            "exact": verdict(run_canary(client, EXACT, embedder=query_model)),
            "verify": _verify(client, sample, verify_with)}


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
    parser.add_argument("--shares", default="0.1,0.3",
                        help="Shares of the points the delete and noise damages touch.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/embedops-bench-canary"))
    args = parser.parse_args()
    os.environ.setdefault("EMBEDOPS_ENABLE_TEST_MODELS", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    model = f"testing/hash-{args.dim}"
    result: dict[str, Any] = {"machine": machine(), "model": model,
                              "load_before": os.getloadavg()[0],
                              "build": build(args.work, args.documents, model)}
    with embedops.open(args.work / "store") as client:
        result["points"] = client.count(COLLECTION)
        for name, runs in ((SERVED, args.runs), (EXACT, 3)):
            seconds, last = timed_runs(client, name, runs)
            result[name] = {"run_in_process_s": summary(seconds), "last": verdict(last)}
    result["run_cli_s"] = summary(cli_runs(args.work / "store", 3))
    result["load_after_timing"] = os.getloadavg()[0]
    with embedops.open(args.work / "store") as client:
        result["proofs"] = proofs(client, [float(x) for x in args.shares.split(",")],
                                  args.dim)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
