"""Hard negatives mined with BM25 (``bm25s``): the documents that share a query's words
but are not known to answer it.

A negative is never the pair's positive, never a document listed relevant to the query,
and never a document whose text equals a relevant one (duplicates in the corpus).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence

from embedops.errors import ConfigError
from embedops.finetune.pairs import Corpus, Pair

Negatives = dict[str, list[str]]  # query id -> negative document ids, best BM25 first


def mine_hard_negatives(pairs: Sequence[Pair], corpus: Corpus, k: int = 5) -> Negatives:
    """The top-``k`` BM25 documents of each query that are not relevant to it.

    Queries whose words BM25 cannot match get fewer (or no) negatives; ``fill_negatives``
    tops them up. Raises ConfigError when ``bm25s`` is not installed."""
    if k <= 0:
        return {}
    try:
        import bm25s
    except ImportError as exc:
        raise ConfigError("hard negatives need bm25s: pip install 'embedops[finetune]'") from exc
    doc_ids = list(corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([corpus[d] for d in doc_ids], show_progress=False),
                    show_progress=False)
    vocab = retriever.vocab_dict
    queries = _queries(pairs)
    excluded = _excluded(pairs, corpus)
    depth = min(len(doc_ids), k + max(len(v) for v in excluded.values()) + 10)
    negatives: Negatives = {}
    for qid, text in queries.items():
        tokens = [t for t in bm25s.tokenize(text, return_ids=False, show_progress=False)[0]
                  if t in vocab]
        if not tokens:
            negatives[qid] = []
            continue
        found, scores = retriever.retrieve([tokens], k=depth, show_progress=False)
        ranked = [doc_ids[int(i)] for i, s in zip(found[0], scores[0], strict=True) if s > 0]
        negatives[qid] = [d for d in ranked if d not in excluded[qid]][:k]
    return negatives


def fill_negatives(negatives: Negatives, pairs: Sequence[Pair], corpus: Corpus, k: int,
                   seed: int = 0) -> tuple[Negatives, int]:
    """Every query topped up to ``k`` negatives with random non-relevant documents (the
    same seed, the same choice), so each training row has the same shape. Returns the
    filled table and how many random documents were added."""
    rng = random.Random(seed)
    excluded = _excluded(pairs, corpus)
    doc_ids = sorted(corpus)
    filled, added = {}, 0
    for qid in _queries(pairs):
        chosen = list(negatives.get(qid, []))
        pool = [d for d in doc_ids if d not in excluded[qid] and d not in chosen]
        extra = rng.sample(pool, min(len(pool), k - len(chosen))) if len(chosen) < k else []
        filled[qid] = chosen + extra
        added += len(extra)
    return filled, added


def negatives_digest(negatives: Negatives) -> str:
    """SHA-256 of the mined negatives (canonical JSON): part of the training-data version."""
    canonical = json.dumps({q: negatives[q] for q in sorted(negatives)}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _queries(pairs: Sequence[Pair]) -> dict[str, str]:
    return {p.query_id: p.query for p in pairs}


def _excluded(pairs: Sequence[Pair], corpus: Corpus) -> dict[str, set[str]]:
    """Query id -> ids that must never be its negative: its relevant documents and every
    document whose text equals one of theirs."""
    by_text: dict[str, set[str]] = {}
    for doc_id, text in corpus.items():
        by_text.setdefault(_norm(text), set()).add(doc_id)
    excluded: dict[str, set[str]] = {}
    for pair in pairs:
        ids = excluded.setdefault(pair.query_id, set())
        for doc_id in {*pair.relevant_ids, pair.positive_id}:
            ids.add(doc_id)
            if doc_id in corpus:
                ids |= by_text.get(_norm(corpus[doc_id]), set())
        ids |= by_text.get(_norm(pair.positive), set())
    return excluded


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
