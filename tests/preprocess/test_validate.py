"""Validation reasons on cleaned text."""

from __future__ import annotations

import pytest

from embedops.preprocess.validate import count_words, looks_binary, validate_text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\ufffd" * 30 + " words here", "garbage"),
        ("\ue000" * 40 + " some words", "garbage"),
        ("#$%^&*()!@ " * 10, "garbage"),
        ("🙂🙂🙂", "garbage"),
        ("a", "too_short"),
        ("1234 5678", "too_short"),
    ],
)
def test_rejections(text: str, reason: str) -> None:
    problem = validate_text(text)
    assert problem is not None and problem.reason == reason
    assert problem.detail


@pytest.mark.parametrize(
    "text",
    [
        "ok",
        "Привет",
        "中文",
        "हिन्दी भाषा",
        "Wow!!! 🙂 great",
        "def f(x): return x + 1",
    ],
)
def test_accepted(text: str) -> None:
    assert validate_text(text) is None


def test_min_words_threshold() -> None:
    text = "three real words"
    assert validate_text(text, min_words=3) is None
    problem = validate_text(text, min_words=4)
    assert problem is not None and problem.reason == "too_short"
    assert validate_text("a", min_words=0) is None


def test_count_words_needs_two_letters_and_stops_at_limit() -> None:
    assert count_words("a bb c1 dd2 3e4f 55") == 3
    assert count_words("one two three four", limit=2) == 2


def test_looks_binary() -> None:
    assert looks_binary("\x00\x01\x02\x03 abc") is not None
    assert looks_binary("text with one \x00 nul in a longer line of words") is None
    assert looks_binary("") is None
