"""Token-window chunking with the embedder's own tokenizer.

Windows hold at most ``chunk_tokens`` tokens (never more than the model accepts) and
overlap by at least ``overlap`` tokens. A window's end snaps back to a sentence end, else a
word end, when one lies in its last half; its start snaps back to a word start, so no chunk
begins inside a word. Chunk text is always ``text[start:end]`` of the cleaned text.
"""

from __future__ import annotations

from collections.abc import Sequence

from embedops.embedders.base import Tokenizer
from embedops.types import Chunk

_SENTENCE_END = frozenset(".!?。！？")


class TokenChunker:
    """Overlapping token windows. Deterministic; linear in the text length."""

    def __init__(self, tokenizer: Tokenizer, chunk_tokens: int = 256, overlap: int = 32) -> None:
        if chunk_tokens < 1 or overlap < 0:
            raise ValueError("chunk_tokens must be >= 1 and overlap >= 0")
        self.limit = min(chunk_tokens, tokenizer.max_content_tokens)
        if overlap >= self.limit:
            raise ValueError(f"overlap {overlap} must be smaller than the window {self.limit}")
        self.overlap = overlap
        self.tokenizer = tokenizer

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        spans = self.tokenizer.offsets(text)
        if not spans:
            return []
        windows = token_windows(text, spans, self.limit, self.overlap)
        chunks = []
        for n, (first, last) in enumerate(windows):
            start, end = spans[first][0], spans[last - 1][1]
            chunks.append(Chunk(doc_id, n, text[start:end], start, end, last - first))
        return fit_to_limit(chunks, self.tokenizer, self.limit)


def token_windows(
    text: str, spans: Sequence[tuple[int, int]], limit: int, overlap: int
) -> list[tuple[int, int]]:
    """Half-open token index ranges of each window."""
    n = len(spans)
    windows: list[tuple[int, int]] = []
    first = 0
    while True:
        last = min(first + limit, n)
        if last < n:
            last = _snap_end(text, spans, first, last)
        windows.append((first, last))
        if last >= n:
            return windows
        first = _snap_start(spans, max(last - overlap, first + 1), first + 1, limit // 4)


def _is_word_start(spans: Sequence[tuple[int, int]], i: int) -> bool:
    """A word starts at token ``i`` when whitespace (or the text start) precedes it."""
    return i == 0 or spans[i][0] > spans[i - 1][1]


def _snap_end(text: str, spans: Sequence[tuple[int, int]], first: int, last: int) -> int:
    """Move ``last`` back to a sentence end, else a word end, within the window's last half."""
    floor = first + max(1, (last - first) // 2)
    word_end = None
    for cut in range(last, floor - 1, -1):
        if not _is_word_start(spans, cut):
            continue
        if text[spans[cut - 1][1] - 1] in _SENTENCE_END:
            return cut
        if word_end is None:
            word_end = cut
    return word_end or last


def _snap_start(spans: Sequence[tuple[int, int]], start: int, floor: int, reach: int) -> int:
    """Move ``start`` back to the start of its word: at most ``reach`` tokens, never below
    ``floor``. Without a word start in reach (one huge "word"), keep ``start``."""
    i = start
    while i > max(floor, start - reach):
        if _is_word_start(spans, i):
            return i
        i -= 1
    return i if _is_word_start(spans, i) else start


def fit_to_limit(chunks: list[Chunk], tokenizer: Tokenizer, limit: int) -> list[Chunk]:
    """Recount each chunk on its own (a tokenizer may split a cut text differently) and trim
    any chunk that re-tokenizes above ``limit``. Rarely trims anything; always terminates."""
    counts = tokenizer.count([c.text for c in chunks])
    fitted = []
    for chunk, count in zip(chunks, counts, strict=True):
        while count > limit and chunk.end - chunk.start > 1:
            end = chunk.start + max(1, (chunk.end - chunk.start) * limit // count)
            chunk = Chunk(chunk.doc_id, chunk.index, chunk.text[: end - chunk.start],
                          chunk.start, end, 0)
            count = tokenizer.count([chunk.text])[0]
        fitted.append(Chunk(chunk.doc_id, chunk.index, chunk.text, chunk.start, chunk.end, count))
    return fitted
