"""Text search over a collection: embed the query with the collection's own model,
search the store, and point at the best-matching part of each hit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedops.embedders import Embedder
from embedops.errors import FingerprintMismatch, InputRejected
from embedops.preprocess.chunk_sentences import sentence_spans
from embedops.store.protocol import CollectionInfo, Filter, Hit, VectorStore

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it",
    "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which",
    "who", "why", "with",
})


@dataclass(frozen=True)
class TextHit:
    """A search hit with its chunk text and the span that best matches the query."""

    id: str
    doc_id: str
    score: float
    text: str
    payload: dict[str, Any]
    highlight: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "doc_id": self.doc_id, "score": self.score, "text": self.text,
                "highlight": list(self.highlight), "payload": self.payload}


class Searcher:
    """Embeds queries in the query role with the model a collection was built with
    (``embedder`` must carry the collection's fingerprint; see ``Client.embedder``)."""

    def __init__(self, store: VectorStore, collection: str | CollectionInfo,
                 embedder: Embedder) -> None:
        """``collection``: a name (resolved now) or an already resolved collection."""
        self.store = store
        self.info = (collection if isinstance(collection, CollectionInfo)
                     else store.get_collection(collection))
        if embedder.info.fingerprint != self.info.fingerprint:
            raise FingerprintMismatch(
                f"collection {self.info.name!r} holds vectors of {self.info.model} "
                f"({self.info.fingerprint}); queries embedded by {embedder.info.name} "
                f"({embedder.info.fingerprint}) would search another space")
        self.embedder = embedder

    def search_vectors(self, queries: list[str], k: int, filter: Filter | None = None,
                       exact: bool = False) -> list[list[Hit]]:
        vectors = self.embedder.embed(queries, "query")
        return self.store.search(self.info.name, vectors, k=k, filter=filter, exact=exact)

    def search(self, query: str, k: int = 10, filter: Filter | None = None,
               exact: bool = False) -> list[TextHit]:
        if not query.strip():
            raise InputRejected("empty", "the query is empty")
        return text_hits(query, self.search_vectors([query], k, filter, exact)[0])


def text_hits(query: str, hits: list[Hit]) -> list[TextHit]:
    """Hits with their chunk text and the span that best matches ``query``."""
    return [_text_hit(query, hit) for hit in hits]


def _text_hit(query: str, hit: Hit) -> TextHit:
    text = str(hit.payload.get("text", ""))
    payload = {k: v for k, v in hit.payload.items() if k != "text"}
    return TextHit(hit.id, str(hit.payload.get("doc_id", hit.id.rsplit("#", 1)[0])),
                   round(float(hit.score), 6), text, payload, best_span(query, text))


def best_span(query: str, text: str) -> tuple[int, int]:
    """The sentence of ``text`` sharing the most content words with ``query``."""
    terms = {w.lower() for w in _WORD.findall(query)} - _STOP
    best, best_score = (0, 0), 0
    for start, end in sentence_spans(text):
        words = {w.lower() for w in _WORD.findall(text[start:end])}
        score = len(terms & words)
        if score > best_score:
            best, best_score = (start, end), score
    return best


def doc_scores(hits: list[Hit]) -> dict[str, float]:
    """Chunk hits -> document scores (max over a document's chunks)."""
    scores: dict[str, float] = {}
    for hit in hits:
        doc = str(hit.payload.get("doc_id", hit.id.rsplit("#", 1)[0]))
        scores[doc] = max(scores.get(doc, -np.inf), float(hit.score))
    return scores
