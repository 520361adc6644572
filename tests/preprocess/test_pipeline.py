"""Entry points: kinds, options, in-memory text, limits, settings."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import embedops.preprocess as preprocess
from embedops.config import Settings
from embedops.errors import ConfigError
from embedops.preprocess import (
    KINDS,
    PreprocessOptions,
    detect_kind,
    preprocess_bytes,
    preprocess_file,
    preprocess_text,
)
from tests.preprocess.nasty_files import PDF_SENTENCE, minimal_pdf


@pytest.mark.parametrize(
    ("source", "data", "kind"),
    [
        ("a.txt", b"hello", "text"),
        ("docs/A.MD", b"# hi", "markdown"),
        ("x.markdown", b"hi", "markdown"),
        ("x.rst", b"hi", "text"),
        ("p.HTM", b"<p>x</p>", "html"),
        ("p.xhtml", b"<p>x</p>", "html"),
        ("d.pdf", b"not a pdf", "pdf"),
        ("c.ndjson", b"{}", "jsonl"),
        ("c.json", b"[]", "json"),
        ("gz.txt", gzip.compress(b"x", mtime=0), "binary"),
        ("report.txt", minimal_pdf("hi", "t"), "pdf"),
        ("page.txt", b"<!DOCTYPE html><p>x</p>", "text"),
        ("noext", b"  <!doctype HTML><p>x</p>", "html"),
        ("unknown.xyz", b"<html><body>x</body></html>", "html"),
        ("unknown.xyz", b"just words", "text"),
        (".hidden", b"words", "text"),
    ],
)
def test_detect_kind(source: str, data: bytes, kind: str) -> None:
    assert detect_kind(source, data) == kind


def test_forced_kind_overrides_extension() -> None:
    data = b"<html><title>T</title><p>Forced html parsing.</p></html>"
    forced = preprocess_bytes(data, "page.txt", PreprocessOptions(kind="html"))
    assert forced.documents[0].text == "Forced html parsing."
    assert forced.documents[0].title == "T"
    plain = preprocess_bytes(data, "page.txt")
    assert plain.documents[0].text.startswith("<html>")


def test_pdf_metadata() -> None:
    (doc,) = preprocess_bytes(minimal_pdf(PDF_SENTENCE, "Title"), "a/b.pdf").documents
    assert doc.id == "a/b.pdf" and doc.text == PDF_SENTENCE
    assert doc.metadata == {"kind": "pdf", "pages": 1}


def test_too_large_bytes_and_file(tmp_path: Path) -> None:
    options = PreprocessOptions(max_bytes=10)
    result = preprocess_bytes(b"x" * 11, "big.txt", options)
    assert [(r.reason, r.stage) for r in result.rejections] == [("too_large", "decode")]
    path = tmp_path / "big.txt"
    path.write_bytes(b"words " * 5)
    assert [r.reason for r in preprocess_file(path, tmp_path, options).rejections] == [
        "too_large"
    ]
    assert preprocess_bytes(b"ten bytes!", "ok.txt", options).documents


def test_preprocess_text() -> None:
    result = preprocess_text("  Hello\u200b   world  ", "mem-1", title=" A\nTitle ",
                             metadata={"lang": "en"})
    (doc,) = result.documents
    assert (doc.id, doc.text, doc.title, doc.metadata) == ("mem-1", "Hello world", "A Title",
                                                           {"lang": "en"})
    rejected = preprocess_text("\x00\x01\x02\x03\x04", "mem-2")
    assert [(r.source, r.reason) for r in rejected.rejections] == [("mem-2", "binary")]


def test_unicode_form_and_min_words_options() -> None:
    nfkc = preprocess_text("\ufb01ne words", "d", PreprocessOptions(unicode_form="NFKC"))
    assert nfkc.documents[0].text == "fine words"
    strict = preprocess_text("two words", "d", PreprocessOptions(min_words=3))
    assert [r.reason for r in strict.rejections] == ["too_short"]


@pytest.mark.parametrize(
    "kwargs",
    [{"unicode_form": "NFD"}, {"kind": "docx"}, {"min_words": -1}, {"max_bytes": 0}],
)
def test_invalid_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        PreprocessOptions(**kwargs)  # type: ignore[arg-type]


def test_options_from_settings() -> None:
    settings = Settings(unicode_form="NFKC", min_words=3)
    options = PreprocessOptions.from_settings(settings, text_field="body")
    assert (options.unicode_form, options.min_words, options.text_field) == ("NFKC", 3, "body")


def test_source_outside_root_keeps_its_path(tmp_path: Path) -> None:
    inside = tmp_path / "root"
    inside.mkdir()
    path = tmp_path / "elsewhere.txt"
    path.write_text("Outside the root.", encoding="utf-8")
    (doc,) = preprocess_file(path, root=inside).documents
    assert doc.id == path.as_posix()


def test_public_names_are_exported() -> None:
    for name in preprocess.__all__:
        assert hasattr(preprocess, name), name
    assert set(KINDS) == {"text", "markdown", "html", "pdf", "json", "jsonl"}
