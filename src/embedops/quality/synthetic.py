"""Synthetic canary queries, derived from a collection's own documents.

Each query is a document's title or one sentence of one of its chunks, and that document
is the one relevant answer. Such queries are easy for a healthy index (the words are the
document's own), which is what a canary wants: a drop means the index, the vectors or the
query model changed, not that the questions were hard.
"""

from __future__ import annotations

import random

from embedops.ledger import Ledger, StoredDocument
from embedops.ledger.canaries import CanaryQuery
from embedops.preprocess.chunk_sentences import sentence_spans

MIN_WORDS, MAX_WORDS = 4, 40  # a sentence shorter says too little, longer is a passage
MAX_CHARS = 300
TITLE_SHARE = 0.3  # how often a document with a usable title gives its title


def synthetic_queries(ledger: Ledger, collection: str, n: int,
                      seed: int = 0) -> list[CanaryQuery]:
    """Up to ``n`` queries, at most one per document, from documents chosen at random
    (the same ``seed`` gives the same queries). Fewer when the collection has fewer
    usable text documents; a text already taken is never asked twice."""
    doc_ids = sorted(ledger.documents(collection))
    random.Random(seed).shuffle(doc_ids)
    rng = random.Random(seed + 1)
    seen: set[str] = set()
    queries: list[CanaryQuery] = []
    for doc_id in doc_ids:
        if len(queries) >= n:
            break
        doc = ledger.stored(collection, doc_id)
        text = _pick(doc, rng, seen) if doc is not None else None
        if text is None:
            continue
        seen.add(text.casefold())
        queries.append(CanaryQuery(f"syn-{len(queries) + 1:05d}", text, {doc_id: 1}))
    return queries


def _pick(doc: StoredDocument, rng: random.Random, seen: set[str]) -> str | None:
    if doc.text is None or doc.modality != "text":
        return None
    title = " ".join((doc.title or "").split())
    if title and 2 <= len(title.split()) <= MAX_WORDS and title.casefold() not in seen \
            and rng.random() < TITLE_SHARE:
        return title[:MAX_CHARS]
    sentences = [s for s in _sentences(doc) if s.casefold() not in seen]
    return rng.choice(sentences) if sentences else None


def _sentences(doc: StoredDocument) -> list[str]:
    out = []
    for chunk in doc.chunks():
        text = chunk["text"] or ""
        for start, end in sentence_spans(text):
            sentence = " ".join(text[start:end].split())
            if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
                out.append(sentence[:MAX_CHARS])
    return list(dict.fromkeys(out))
