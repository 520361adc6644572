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


def make_chunker(settings: Settings, tokenizer: Tokenizer | None = None) -> Chunker:
    """The chunker named by ``settings.chunker``, using the model's own tokenizer."""
    tok = tokenizer or load_tokenizer(settings.model, settings.cache_dir)
    if settings.chunker == "sentences":
        return SentenceChunker(tok, sentences=settings.sentences_per_chunk,
                               chunk_tokens=settings.chunk_tokens)
    return TokenChunker(tok, settings.chunk_tokens, settings.chunk_overlap)
