"""Text cleaning: mojibake repair, invisible characters, Unicode form, whitespace.

:func:`clean_text` guarantees, for any ``str`` input:

- the result is in the requested normal form (NFC by default, NFKC on request);
- mojibake is repaired by ftfy ("cafÃ©" -> "café"; C1 controls, which are cp1252 bytes
  read as Latin-1, become their cp1252 characters; a lone surrogate becomes U+FFFD);
- it holds no control characters except ``\\n`` (tabs become spaces), no surrogates,
  no zero-width, bidi-control, soft-hyphen or byte-order-mark characters; a zero-width
  joiner survives only between two emoji, so sequences like 👨‍👩‍👧 stay one glyph;
- runs of horizontal whitespace are one space, lines carry no leading or trailing spaces,
  and at most one blank line separates paragraphs ("\\n\\n" is kept for sentence chunking);
- it is stripped, and cleaning it again changes nothing (idempotent).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from ftfy import TextFixerConfig, fix_text
from ftfy.badness import is_bad
from ftfy.fixes import remove_terminal_escapes

UnicodeForm = Literal["NFC", "NFKC"]

#: ftfy repairs mojibake and nothing else: no quote uncurling, no width or ligature folding,
#: no HTML unescaping (that would make cleaning non-idempotent on "&amp;amp;"), and no
#: normalisation (done here, in the requested form).
FTFY_CONFIG = TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=True,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=True,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

_ZWJ = "\u200d"
# Zero-width, bidi-control, soft hyphen, byte-order mark, invisible operators, interlinear
# annotation marks and the Mongolian vowel separator. The ZWJ is handled apart.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u180e\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb"
)
# Emoji-ish code points on either side of a joiner (Extended_Pictographic, approximated by
# blocks), with an optional variation selector or skin-tone modifier after the left one.
_EMOJI = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u2300-\u23ff\u2460-\u27bf"
    "\u2934\u2935\u2b00-\u2bff\U0001f000-\U0001faff"
)
# One pass: the first alternative keeps an emoji joiner (with the variation selector or
# skin tone before it), the second drops every other invisible or control character.
_INVISIBLE_OR_JOINER = re.compile(
    f"(?P<keep>(?<=[{_EMOJI}])[\ufe0f\U0001f3fb-\U0001f3ff]?{_ZWJ}(?=[{_EMOJI}]))"
    f"|[\x00-\x08\x0b-\x1f\x7f-\x9f{_INVISIBLE}\ud800-\udfff{_ZWJ}]"
)
_FTFY_TARGETS = re.compile("[\x80-\x9f\ud800-\udfff]")
_PIECE_CHARS = 16_384
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_HSPACE = re.compile("[\t \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_AROUND_NEWLINE = re.compile(" ?\n ?")
_BLANK_LINES = re.compile("\n{3,}")


def repair_mojibake(text: str) -> str:
    """Undo text that was decoded with the wrong codec ("cafÃ©" -> "café") via ftfy.

    ftfy works line by line (about 0.5 s per MB of short lines). When no part of the text
    looks like mojibake to ftfy's own detector and it holds no C1 control or surrogate, the
    only enabled fix that can still apply is the removal of terminal escape codes, so that
    is all the text gets.
    """
    if not looks_like_mojibake(text):
        return remove_terminal_escapes(text)
    return fix_text(text, FTFY_CONFIG)


def looks_like_mojibake(text: str) -> bool:
    """ftfy's detector (plus C1 controls and surrogates), run over pieces of about
    ``_PIECE_CHARS`` cut after a line break: one regex search over a 1 MB text holds
    Python's global lock for ~0.2 s (a serving process' queries wait that long), a piece
    for ~3 ms. ftfy repairs text line by line, so a pattern across a line break is one it
    would not repair either."""
    return any(_FTFY_TARGETS.search(piece) is not None or is_bad(piece)
               for piece in line_pieces(text, _PIECE_CHARS))


def line_pieces(text: str, size: int) -> list[str]:
    """``text`` in consecutive pieces, each ending at the first line break at or after
    ``size`` characters (the last piece takes the rest; a text without line breaks is
    cut at a space instead, and one with neither stays whole)."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > size:
        cut = text.find("\n", start + size)
        if cut < 0:
            cut = text.find(" ", start + size)
        if cut < 0:
            break
        pieces.append(text[start:cut + 1])
        start = cut + 1
    pieces.append(text[start:])
    return pieces


def remove_invisible(text: str) -> str:
    """Drop control, zero-width and bidi characters and lone surrogates.

    Line breaks of every kind become ``\\n`` first; tabs are kept (whitespace folding turns
    them into spaces). A zero-width joiner between two emoji is kept.
    """
    text = _LINE_BREAKS.sub("\n", text)
    return _INVISIBLE_OR_JOINER.sub(lambda m: m.group("keep") or "", text)


def collapse_whitespace(text: str) -> str:
    """Fold horizontal whitespace to one space, 3+ newlines to 2, trim lines and ends."""
    text = _HSPACE.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip(" \n")


def clean_text(text: str, unicode_form: UnicodeForm = "NFC") -> str:
    """Return the cleaned form of ``text`` (see the module docstring for the guarantees).

    The steps repeat until nothing changes (at most three rounds; one is the common case),
    because removing a character can make two others composable or expose more mojibake.
    """
    for _ in range(3):
        cleaned = _clean_once(text, unicode_form)
        if cleaned == text:
            break
        text = cleaned
    return text


def _clean_once(text: str, unicode_form: UnicodeForm) -> str:
    text = repair_mojibake(text)
    text = remove_invisible(text)
    text = unicodedata.normalize(unicode_form, text)
    return collapse_whitespace(text)
