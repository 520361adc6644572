"""IR metrics computed with trec_eval (pytrec_eval), BEIR style.

Queries without any judgment are left out of the averages (BEIR convention); judged
queries with no retrieved document count as zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytrec_eval

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

METRIC_KEYS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """nDCG@10, recall@10, recall@100 and MRR@10 averaged over judged queries."""
    judged = {q: {d: int(s) for d, s in docs.items()} for q, docs in qrels.items() if docs}
    if not judged:
        return dict.fromkeys(METRIC_KEYS, 0.0)
    full = {q: {d: float(s) for d, s in run.get(q, {}).items()} for q in judged}
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in full.items()}
    cut = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.10,100"})
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"})
    per_query = cut.evaluate(full)
    rr_per_query = rr.evaluate(top10)
    n = len(judged)

    def mean(table: Mapping[str, Mapping[str, float]], key: str) -> float:
        return sum(table.get(q, {}).get(key, 0.0) for q in judged) / n

    return {
        "ndcg@10": mean(per_query, "ndcg_cut_10"),
        "recall@10": mean(per_query, "recall_10"),
        "recall@100": mean(per_query, "recall_100"),
        "mrr@10": mean(rr_per_query, "recip_rank"),
    }
