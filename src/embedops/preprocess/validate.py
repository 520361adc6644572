"""Checks that decide whether text may reach a model.

:func:`looks_binary` runs on decoded text *before* cleaning (cleaning would erase the
evidence); :func:`validate_text` runs on the cleaned text. Each returns None when the text
passes, or a :class:`Problem` with a machine-readable reason:

- ``binary``: more than 10 % of the raw characters are C0/C1 controls;
- ``empty``: nothing is left after cleaning;
- ``garbage``: more than 10 % U+FFFD replacement characters, less than 80 % printable
  characters, or less than 25 % letters, digits and marks among the non-space characters;
- ``too_short``: fewer than ``min_words`` words, where a word is a whitespace-separated
  token with at least two letters of any script.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

BINARY_CONTROL_LIMIT = 0.10
REPLACEMENT_LIMIT = 0.10
PRINTABLE_MIN = 0.80
WORDLIKE_MIN = 0.25
#: The ratios are measured on a prefix this long: enough evidence, bounded time.
SAMPLE_CHARS = 200_000

_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_TOKENS = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Problem:
    """Why text is rejected."""

    reason: str
    detail: str


def looks_binary(raw: str) -> Problem | None:
    """Flag decoded text that is mostly control characters (binary data that decoded)."""
    sample = raw[:SAMPLE_CHARS]
    if not sample:
        return None
    ratio = len(_CONTROLS.findall(sample)) / len(sample)
    if ratio > BINARY_CONTROL_LIMIT:
        return Problem("binary", f"{ratio:.0%} control characters")
    return None


def validate_text(text: str, min_words: int = 1) -> Problem | None:
    """Check cleaned text; the first failing check gives the reason (see module docstring)."""
    if not text:
        return Problem("empty", "no text left after cleaning")
    sample = _SPACE.sub("", text[:SAMPLE_CHARS])
    if not sample:
        return Problem("empty", "only whitespace")
    for check in (_replacement_check, _printable_check, _wordlike_check):
        problem = check(sample)
        if problem is not None:
            return problem
    return _word_count_check(text, min_words)


def count_words(text: str, limit: int | None = None) -> int:
    """Tokens with two or more letters; stops counting at ``limit`` when given."""
    count = 0
    for match in _TOKENS.finditer(text):
        if sum(ch.isalpha() for ch in match.group()) >= 2:
            count += 1
            if limit is not None and count >= limit:
                break
    return count


def _replacement_check(sample: str) -> Problem | None:
    ratio = sample.count("\ufffd") / len(sample)
    if ratio > REPLACEMENT_LIMIT:
        return Problem("garbage", f"{ratio:.0%} replacement characters (U+FFFD)")
    return None


def _printable_check(sample: str) -> Problem | None:
    ratio = sum(ch.isprintable() for ch in sample) / len(sample)
    if ratio < PRINTABLE_MIN:
        return Problem("garbage", f"only {ratio:.0%} printable characters")
    return None


def _wordlike_check(sample: str) -> Problem | None:
    wordlike = sum(ch.isalnum() or _is_mark(ch) for ch in sample)
    ratio = wordlike / len(sample)
    if ratio < WORDLIKE_MIN:
        return Problem("garbage", f"only {ratio:.0%} letters or digits")
    return None


def _word_count_check(text: str, min_words: int) -> Problem | None:
    if min_words <= 0:
        return None
    found = count_words(text, limit=min_words)
    if found < min_words:
        return Problem("too_short", f"{found} word(s), at least {min_words} required")
    return None


def _is_mark(ch: str) -> bool:
    # Combining marks (Mn, Mc, Me) carry the vowels of Indic and other scripts.
    return unicodedata.category(ch)[0] == "M"
