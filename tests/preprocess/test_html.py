"""HTML extraction: visible text only, block boundaries, title, hostile structure."""

from __future__ import annotations

import time

from embedops.preprocess.clean import clean_text
from embedops.preprocess.html import HtmlText, html_to_text


def _text(markup: str) -> str:
    page = html_to_text(markup)
    assert isinstance(page, HtmlText)
    return clean_text(page.text)


def test_blocks_become_lines_and_inline_stays_inline() -> None:
    markup = "<div>one <b>bold</b> <i>two</i></div><p>para</p>line<br>break<span>!</span>"
    assert _text(markup) == "one bold two\n\npara\nline\nbreak!"


def test_invisible_content_is_dropped() -> None:
    markup = (
        "<html><head><title>T</title><meta charset='utf-8'><style>x{}</style></head><body>"
        "<script>var s = '<p>not text</p>';</script><template><p>tmpl</p></template>"
        "<noscript>nojs</noscript><svg><text>vector</text></svg><!-- note -->"
        "<p>shown</p></body></html>"
    )
    assert _text(markup) == "shown"


def test_entities_and_title() -> None:
    page = html_to_text("<title>  A &amp; B\n title </title><p>&lt;&eacute;&#x263A;&gt;</p>")
    assert isinstance(page, HtmlText)
    assert page.title == "A & B title"
    assert clean_text(page.text) == "<é☺>"


def test_no_title_and_empty_title() -> None:
    assert html_to_text("<p>x</p>") == HtmlText("\nx\n", None)
    page = html_to_text("<title>   </title><p>x</p>")
    assert isinstance(page, HtmlText) and page.title is None


def test_deep_nesting_does_not_recurse() -> None:
    assert _text("<div>" * 20000 + "deep words") == "deep words"


def test_long_page_is_linear() -> None:
    markup = "<p>some words here</p>" * 10000  # 220 KB, 10k sibling blocks
    started = time.perf_counter()
    text = _text(markup)
    elapsed = time.perf_counter() - started
    assert text.count("some words here") == 10000
    assert elapsed < 3.0, f"{elapsed:.2f}s"


def test_unclosed_and_broken_markup() -> None:
    text = _text("<p>open <b>never closed <div>inner</p></i> tail")
    assert text == "open never closed\ninner\n\ntail"
