"""Token-window chunking with the embedder's own tokenizer.

Windows hold at most ``chunk_tokens`` tokens (never more than the model accepts) and
overlap by at least ``overlap`` tokens. A window's end snaps back to a sentence end, else a
word end, when one lies in its last half; its start snaps back to a word start, so no chunk
begins inside a word. Chunk text is always ``text[start:end]`` of the cleaned text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
        self.plan = f"tokens:limit={self.limit}:overlap={overlap}"

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        spans = self.tokenizer.offsets(text)
        if not spans:
            return []

        def fits(first: int, last: int) -> bool:
            piece = text[spans[first][0] : spans[last - 1][1]]
            return self.tokenizer.count([piece])[0] <= self.limit

        windows = token_windows(text, spans, self.limit, self.overlap, fits)
        pieces = [(spans[first][0], spans[last - 1][1]) for first, last in windows]
        counts = self.tokenizer.count([text[s:e] for s, e in pieces])
        return [Chunk(doc_id, n, text[s:e], s, e, c)
                for n, ((s, e), c) in enumerate(zip(pieces, counts, strict=True))]


def token_windows(
    text: str,
    spans: Sequence[tuple[int, int]],
    limit: int,
    overlap: int,
    fits: Callable[[int, int], bool] | None = None,
) -> list[tuple[int, int]]:
    """Half-open token index ranges of each window.

    ``fits(first, last)`` re-checks a window on its own text (a tokenizer may split a text
    cut mid-word into more tokens); a window that does not fit gives up tokens at its end,
    and the next window starts from the shortened end, so nothing is skipped.
    """
    n = len(spans)
    windows: list[tuple[int, int]] = []
    first = 0
    while True:
        last = min(first + limit, n)
        if last < n:
            last = _snap_end(text, spans, first, last)
        while fits is not None and last > first + 1 and not fits(first, last):
            last -= 1
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
