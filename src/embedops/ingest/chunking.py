"""Settings -> the chunker a run uses."""

from __future__ import annotations

from typing import Protocol

from embedops.config import Settings
from embedops.embedders import Tokenizer, load_tokenizer
from embedops.preprocess.chunk_sentences import SentenceChunker
from embedops.preprocess.chunk_tokens import TokenChunker
from embedops.types import Chunk


class Chunker(Protocol):
    """Splits one cleaned document text into chunks. ``plan`` names the chunker and its
    limits: a document chunked under another plan is chunked and embedded again."""

    plan: str

    def chunk(self, doc_id: str, text: str) -> list[Chunk]: ...


class WholeDocumentChunker:
    """For documents that arrive already chunked (a RAG framework's nodes): one chunk per
    document when it fits the model's context; a longer one goes into windows of the
    model's whole context (overlapping by 32 tokens), so nothing is ever cut off."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        limit = tokenizer.max_content_tokens
        self._windows = TokenChunker(tokenizer, limit, min(32, limit - 1))
        self.plan = f"whole:limit={limit}"

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        tokens = self.tokenizer.count([text])[0]
        if tokens == 0:
            return []
        if tokens <= self.tokenizer.max_content_tokens:
            return [Chunk(doc_id, 0, text, 0, len(text), tokens)]
        return self._windows.chunk(doc_id, text)


def make_chunker(settings: Settings, tokenizer: Tokenizer | None = None) -> Chunker:
    """The chunker named by ``settings.chunker``, using the model's own tokenizer."""
    tok = tokenizer or load_tokenizer(settings.model, settings.cache_dir)
    if settings.chunker == "sentences":
        return SentenceChunker(tok, sentences=settings.sentences_per_chunk,
                               chunk_tokens=settings.chunk_tokens)
    return TokenChunker(tok, settings.chunk_tokens, settings.chunk_overlap)
