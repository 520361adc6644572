"""Property tests: no bytes crash preprocessing; cleaning is idempotent and thorough."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedops.preprocess import REJECTION_REASONS, PreprocessOptions, preprocess_bytes
from embedops.preprocess.clean import clean_text
from embedops.preprocess.kinds import EXTENSION_KINDS

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = st.sampled_from([f"file{ext}" for ext in EXTENSION_KINDS] + ["noext", "x.bin"])
ENCODINGS = st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252",
     "latin-1", "cp1251", "shift_jis", "gb18030"]
)
FORMS = st.sampled_from(["NFC", "NFKC"])
# Invisible code points that must never survive cleaning (ZWJ is checked apart).
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ud800-\udfff\t\r\u2028\u2029]"
)
_EMOJI_CONTEXT = re.compile(
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u2300-\u23ff\u2460-\u27bf\u2934\u2935"
    "\u2b00-\u2bff\U0001f000-\U0001faff][\ufe0f\U0001f3fb-\U0001f3ff]?\u200d"
)


def assert_sound(data: bytes, source: str, options: PreprocessOptions) -> None:
    """The contract of preprocess_bytes, checked on one input."""
    result = preprocess_bytes(data, source, options)
    assert result.documents or result.rejections
    for doc in result.documents:
        assert doc.text
        assert clean_text(doc.text, options.unicode_form) == doc.text
        doc.text.encode("utf-8")  # no lone surrogates: hashing and storage will work
    for rejection in result.rejections:
        assert rejection.reason in REJECTION_REASONS
        assert rejection.stage in ("decode", "parse", "validate")


def assert_clean(text: str) -> None:
    """No forbidden characters; a ZWJ only right after an emoji (and before another)."""
    assert not _FORBIDDEN.search(text)
    joiners = text.count("\u200d")
    assert joiners == len(_EMOJI_CONTEXT.findall(text))
    assert text == text.strip()
    assert "\n\n\n" not in text and "  " not in text


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2048), source=NAMES)
def test_arbitrary_bytes_never_crash(data: bytes, source: str) -> None:
    assert_sound(data, source, PreprocessOptions())


@PROPERTY_SETTINGS
@given(text=st.text(max_size=300), encoding=ENCODINGS, source=NAMES, form=FORMS)
def test_encoded_text_never_crashes(text: str, encoding: str, source: str, form: str) -> None:
    data = text.encode(encoding, errors="replace" if encoding != "utf-8" else "surrogatepass")
    assert_sound(data, source, PreprocessOptions(unicode_form=form))  # type: ignore[arg-type]


@PROPERTY_SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                    max_size=300))
def test_utf8_text_round_trips_to_its_cleaned_form(text: str) -> None:
    result = preprocess_bytes(text.encode("utf-8"), "t.txt")
    for doc in result.documents:
        assert doc.text == clean_text(text)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=400), form=FORMS)
def test_clean_is_idempotent_and_thorough(text: str, form: str) -> None:
    once = clean_text(text, form)  # type: ignore[arg-type]
    assert clean_text(once, form) == once  # type: ignore[arg-type]
    assert unicodedata.is_normalized(form, once)
    assert_clean(once)


_NASTY_ALPHABET = st.sampled_from(
    [*"aé e\u0301 \n\t\r\x00\x85\u00a0\u200b\u200c\u200d\u2028\ufeff\u00adÃ©Â€™\ufb01",
     "👨", "👩", "\ufe0f", "\U0001f3fd", "❤", "Ё", "中"]
)


@PROPERTY_SETTINGS
@given(pieces=st.lists(_NASTY_ALPHABET, max_size=60), form=FORMS)
def test_clean_on_dense_hostile_text(pieces: list[str], form: str) -> None:
    text = "".join(pieces)
    once = clean_text(text, form)  # type: ignore[arg-type]
    assert clean_text(once, form) == once  # type: ignore[arg-type]
    assert_clean(once)
