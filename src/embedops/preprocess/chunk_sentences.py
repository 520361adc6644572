"""Sentence chunking: groups of N sentences, never above the model's token limit.

Sentences are found by a rule-based splitter (terminal punctuation followed by whitespace,
or a blank line). A group closes early when the next sentence would push it over the token
limit; a single sentence longer than the limit is split by the token chunker.
"""

from __future__ import annotations

import re

from embedops.embedders.base import Tokenizer
from embedops.preprocess.chunk_tokens import TokenChunker
from embedops.types import Chunk

_BOUNDARY = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+|\n\s*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Char spans of sentences; whitespace between sentences belongs to no span."""
    spans = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        if text[start:end].strip():
            spans.append(_strip_span(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class SentenceChunker:
    """``sentences`` sentences per chunk (with ``overlap`` sentences repeated), token-capped."""

    def __init__(
        self, tokenizer: Tokenizer, sentences: int = 4, overlap: int = 0,
        chunk_tokens: int = 256,
    ) -> None:
        if sentences < 1 or not 0 <= overlap < sentences:
            raise ValueError("need sentences >= 1 and 0 <= overlap < sentences")
        self.sentences = sentences
        self.overlap = overlap
        self.tokenizer = tokenizer
        self.splitter = TokenChunker(tokenizer, chunk_tokens, overlap=min(32, chunk_tokens // 4))
        self.limit = self.splitter.limit
        self.plan = f"sentences:n={sentences}:overlap={overlap}:limit={self.limit}"

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        pieces, counts = self._pieces(text)
        groups = self._group(pieces, counts)
        counts = self.tokenizer.count([text[s:e] for s, e in groups])
        spans: list[tuple[int, int, int]] = []
        for (start, end), count in zip(groups, counts, strict=True):
            if count <= self.limit:
                spans.append((start, end, count))
            else:  # joining sentences re-tokenized longer than their parts: split by tokens
                spans += [(start + c.start, start + c.end, c.tokens)
                          for c in self.splitter.chunk("", text[start:end])]
        return [Chunk(doc_id, n, text[s:e], s, e, c) for n, (s, e, c) in enumerate(spans)]

    def _pieces(self, text: str) -> tuple[list[tuple[int, int]], list[int]]:
        """Sentence spans and their token counts; over-long sentences are split into
        token windows."""
        spans = sentence_spans(text)
        counts = self.tokenizer.count([text[s:e] for s, e in spans])
        pieces, piece_counts = [], []
        for (start, end), count in zip(spans, counts, strict=True):
            if count <= self.limit:
                pieces.append((start, end))
                piece_counts.append(count)
                continue
            for sub in self.splitter.chunk("", text[start:end]):
                pieces.append((start + sub.start, start + sub.end))
                piece_counts.append(sub.tokens)
        return pieces, piece_counts

    def _group(self, pieces: list[tuple[int, int]], counts: list[int]) -> list[tuple[int, int]]:
        groups = []
        i = 0
        while i < len(pieces):
            j, tokens = i, 0
            while j < len(pieces) and j - i < self.sentences:
                # +1 per joined sentence: a join can add a token the parts did not have
                if j > i and tokens + counts[j] + 1 > self.limit:
                    break
                tokens += counts[j] + (1 if j > i else 0)
                j += 1
            groups.append((pieces[i][0], pieces[j - 1][1]))
            if j >= len(pieces):
                break
            i = max(j - self.overlap, i + 1)
        return groups
