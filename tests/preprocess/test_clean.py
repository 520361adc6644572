"""Cleaning: mojibake repair measured on a corpus, invisible characters, whitespace."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from embedops.preprocess.clean import (
    clean_text,
    collapse_whitespace,
    line_pieces,
    looks_like_mojibake,
    repair_mojibake,
)
from tests.preprocess.samples import (
    CLEAN_SENTENCES,
    as_cp1252_mojibake,
    as_double_mojibake,
    as_latin1_mojibake,
)


def test_repair_leaves_clean_text_alone() -> None:
    changed = [s for s in CLEAN_SENTENCES if repair_mojibake(s) != s]
    assert changed == []


@pytest.mark.parametrize("misread", [as_cp1252_mojibake, as_latin1_mojibake, as_double_mojibake])
def test_repair_fixes_mojibake(misread: Callable[[str], str]) -> None:
    broken = [(s, misread(s)) for s in CLEAN_SENTENCES if misread(s) != s]
    fixed = sum(repair_mojibake(bad) == good for good, bad in broken)
    assert len(broken) >= 15
    assert fixed / len(broken) >= 0.9, f"fixed {fixed} of {len(broken)}"


def test_curly_quotes_and_ligatures_are_kept_in_nfc() -> None:
    text = "\u201cquoted\u201d \ufb01ne \uff21"
    assert clean_text(text) == text


def test_nfkc_folds_compatibility_characters() -> None:
    assert clean_text("\ufb01ne \uff21\uff22", "NFKC") == "fine AB"


def test_nfc_composes() -> None:
    assert clean_text("cafe\u0301") == "caf\u00e9"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("a\u200bb\u200cc\u2060d\ufeffe\u00adf", "abcdef"),
        ("bell\x07 null\x00 esc\x1b del\x7f end", "bell null esc del end"),
        # C1 controls are cp1252 bytes read as Latin-1: ftfy restores the character.
        ("wait\x85 what \x93quoted\x94", "wait\u2026 what \u201cquoted\u201d"),
        ("rtl\u200f mark\u202e override\u2066 isolate", "rtl mark override isolate"),
        ("a\r\nb\rc\u2028d\u2029e", "a\nb\nc\nd\ne"),
        ("  many \t\t spaces \u00a0\u3000 here  ", "many spaces here"),
        ("p1\n\n\n\n\np2\n \n \np3", "p1\n\np2\n\np3"),
        ("line one   \n   line two", "line one\nline two"),
        ("x\u200dy", "xy"),
        # A lone surrogate is lost data: it becomes U+FFFD, which validation counts.
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_invisible_and_whitespace(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize(
    "emoji",
    ["👨\u200d👩\u200d👧", "❤\ufe0f\u200d🔥", "👩🏽\u200d💻", "🏳\ufe0f\u200d🌈"],
)
def test_emoji_zwj_sequences_survive(emoji: str) -> None:
    assert clean_text(f"family {emoji} here") == f"family {emoji} here"


def test_collapse_keeps_paragraph_breaks() -> None:
    assert collapse_whitespace("\n\n a \n\n\n b \n") == "a\n\nb"


def test_output_is_normalised() -> None:
    text = clean_text("A\u030a e\u0301 \u212b")
    assert unicodedata.is_normalized("NFC", text)
    assert clean_text(text) == text


@pytest.mark.parametrize("where", [10, 40_000, 99_990])
def test_mojibake_anywhere_in_a_long_text_is_found_and_repaired(where: int) -> None:
    """The detector runs in pieces; a repair far into a long text is still made."""
    lines = "".join(f"line {n} of a plain report about vectors\n" for n in range(3000))
    text = lines[:where] + " cafÃ© " + lines[where:]
    assert len(line_pieces(text, 16_384)) > 5
    assert looks_like_mojibake(text)
    assert "café" in clean_text(text) and "Ã" not in clean_text(text)
    assert not looks_like_mojibake(lines)


def test_line_pieces_cover_the_text_in_order() -> None:
    text = ("word " * 50 + "\n") * 200
    pieces = line_pieces(text, 1000)
    assert "".join(pieces) == text and len(pieces) > 20
    assert all(p.endswith("\n") for p in pieces[:-1])
    assert line_pieces("x" * 5000, 1000) == ["x" * 5000]  # nowhere to cut
    assert "".join(line_pieces("ab " * 3000, 1000)) == "ab " * 3000  # no line breaks
