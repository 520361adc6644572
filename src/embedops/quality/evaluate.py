"""`embedops eval`: retrieval quality of a collection on a BEIR dataset.

The corpus is (re-)ingested first; ingest is idempotent, so an up-to-date collection costs
one pass of hashing and no embedding. Chunk hits are mapped to documents (max score per
document) before scoring with trec_eval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from embedops.config import Settings
from embedops.ingest.batch import BatchIngest, IngestOptions
from embedops.ledger import Ledger
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.quality.beir import load_qrels, load_queries
from embedops.quality.ir_metrics import evaluate
from embedops.retrieval import Searcher, doc_scores
from embedops.store.protocol import VectorStore


def run_eval(store: VectorStore, ledger: Ledger, settings: Settings, dataset: Path,
             collection: str, k: int = 10, split: str = "test", exact: bool = False,
             dtype: str = "float32") -> dict[str, Any]:
    """Ingest ``dataset``'s corpus into ``collection`` if needed, run its queries, score."""
    queries = load_queries(dataset)
    qrels = load_qrels(dataset, split)
    options = IngestOptions(collection=collection, dtype=dtype,
                            preprocess=PreprocessOptions.from_settings(settings, id_field="_id"))
    ingest = BatchIngest(store, ledger, settings, options).run([dataset / "corpus.jsonl"])
    judged = [q for q in queries if qrels.get(q)]
    searcher = Searcher(store, settings, collection)
    depth = max(k, 100)
    started = time.perf_counter()
    hits = searcher.search_vectors([queries[q] for q in judged], k=depth * 2, exact=exact)
    seconds = time.perf_counter() - started
    run = {}
    for qid, query_hits in zip(judged, hits, strict=True):
        scores = doc_scores(query_hits)
        run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:depth])
    metrics = evaluate(qrels, run)
    return {
        **{key: round(value, 4) for key, value in metrics.items()},
        "queries": len(judged),
        "collection": searcher.info.name,
        "model": searcher.info.model,
        "dtype": searcher.info.dtype,
        "exact": exact,
        "search_seconds": round(seconds, 3),
        "ingest": ingest.to_dict(),
    }
