"""The evaluation gate of a migration: the same labelled queries against the live and
the shadow collection, each side embedding the queries with its own model (query role),
scored with trec_eval like ``embedops eval``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embedops.config import Settings
from embedops.embedders import Embedder
from embedops.quality.beir import load_qrels, load_queries, resolve_dataset
from embedops.quality.ir_metrics import evaluate
from embedops.retrieval import doc_scores
from embedops.store.protocol import CollectionInfo, VectorStore

DEPTH = 100


def score_side(store: VectorStore, info: CollectionInfo, embedder: Embedder,
               queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
               ) -> dict[str, Any]:
    """recall@10, nDCG@10 (and the other ``embedops eval`` metrics) of one collection."""
    judged = [q for q in queries if qrels.get(q)]
    started = time.perf_counter()
    vectors = embedder.embed([queries[q] for q in judged], "query")
    hits = store.search(info.name, vectors, k=DEPTH * 2)
    run = {}
    for qid, query_hits in zip(judged, hits, strict=True):
        scores = doc_scores(query_hits)
        run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:DEPTH])
    metrics = evaluate(qrels, run)
    return {"collection": info.name, "model": info.model, "fingerprint": info.fingerprint,
            **{k: round(v, 4) for k, v in metrics.items()}, "queries": len(judged),
            "seconds": round(time.perf_counter() - started, 3)}


def gate(live: Mapping[str, Any], shadow: Mapping[str, Any],
         settings: Settings) -> dict[str, Any]:
    """Pass when the shadow trails live by at most ``migration_max_drop_points`` on
    recall@10 and nDCG@10, and reaches ``migration_min_recall`` when one is set."""
    drop = settings.migration_max_drop_points
    checks = {
        f"{key} not worse than live by more than {drop} points":
            (shadow[key] - live[key]) * 100 >= -drop for key in ("recall@10", "ndcg@10")}
    if settings.migration_min_recall is not None:
        checks[f"recall@10 >= {settings.migration_min_recall}"] = (
            shadow["recall@10"] >= settings.migration_min_recall)
    return {"passed": all(checks.values()), "checks": checks,
            "max_drop_points": drop, "min_recall": settings.migration_min_recall}


def compare(store: VectorStore, sides: Mapping[str, tuple[CollectionInfo, Embedder]],
            dataset: Path | str, split: str, settings: Settings) -> dict[str, Any]:
    """Score ``live`` and ``shadow`` on ``dataset`` and apply the gate."""
    directory = resolve_dataset(dataset)
    queries, qrels = load_queries(directory), load_qrels(directory, split)
    report: dict[str, Any] = {"dataset": str(directory)}
    for name, (info, embedder) in sides.items():
        report[name] = score_side(store, info, embedder, queries, qrels)
    verdict = gate(report["live"], report["shadow"], settings)
    report["gate"] = verdict
    report["gate_passed"] = verdict["passed"]
    return report
