"""`embedops eval`: retrieval quality of a collection on a BEIR dataset.

The corpus is (re-)ingested first; ingest is idempotent, so an up-to-date collection costs
one pass of hashing and no embedding. Chunk hits are mapped to documents (max score per
document) before scoring with trec_eval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from embedops.client import Client
from embedops.quality.beir import load_qrels, load_queries, resolve_dataset
from embedops.quality.ir_metrics import evaluate
from embedops.retrieval import Searcher, doc_scores


def run_eval(client: Client, dataset: Path, collection: str, k: int = 10,
             split: str = "test", exact: bool = False, dtype: str = "float32",
             model: str | None = None) -> dict[str, Any]:
    """Ingest ``dataset``'s corpus into ``collection`` if needed, run its queries (in
    the query role of the collection's model), score."""
    dataset = resolve_dataset(dataset)  # a directory, or the name of a shipped dataset
    queries = load_queries(dataset)
    qrels = load_qrels(dataset, split)
    ingest = client.ingest([dataset / "corpus.jsonl"], collection, dtype=dtype, model=model,
                           id_field="_id")
    judged = [q for q in queries if qrels.get(q)]
    info = client.store.get_collection(collection)
    searcher = Searcher(client.store, info, client.embedder_for(info))
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
