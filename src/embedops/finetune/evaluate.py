"""Held-out retrieval quality of a sentence-transformers model: recall@10 and nDCG@10.

Exact search (every corpus document scored) so the numbers measure the model, not an
index; the metrics are the project's trec_eval ones (``quality/ir_metrics.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedops.finetune.pairs import Corpus
from embedops.quality.ir_metrics import evaluate

DEPTH = 100


def retrieval_metrics(model: Any, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                      corpus: Corpus, batch_size: int = 64) -> dict[str, float]:
    """Embed ``corpus`` and ``queries`` with ``model`` (a SentenceTransformer), rank every
    document by cosine similarity, score against ``qrels``. Only the given queries are
    asked: the caller passes the held-out ones."""
    doc_ids = list(corpus)
    qids = [q for q in queries if qrels.get(q)]
    docs = _encode(model, [corpus[d] for d in doc_ids], batch_size)
    asked = _encode(model, [queries[q] for q in qids], batch_size)
    scores = asked @ docs.T
    depth = min(DEPTH, len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        top = np.argsort(-scores[row], kind="stable")[:depth]
        run[qid] = {doc_ids[i]: float(scores[row, i]) for i in top}
    metrics = evaluate({q: qrels[q] for q in qids}, run)
    return {**{k: round(v, 4) for k, v in metrics.items()}, "queries": len(qids)}


def _encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
