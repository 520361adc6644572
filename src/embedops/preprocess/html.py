"""HTML -> text with BeautifulSoup and the standard-library parser.

:func:`html_to_text` drops what a reader never sees in the page body (script, style,
noscript, template, head, title, svg, comments), unescapes entities, and turns block
boundaries (paragraphs, headings, list items, table rows, ``<br>``) into newlines so
paragraphs survive for the chunker.
The ``<title>`` becomes the title. Markup the parser refuses yields an :class:`HtmlFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bs4 import BeautifulSoup, Tag
from bs4.exceptions import ParserRejectedMarkup

INVISIBLE_TAGS = (
    "script", "style", "noscript", "template", "head", "title", "svg", "iframe", "object",
)
BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
    "table", "tbody", "td", "th", "thead", "tfoot", "tr", "ul",
)


@dataclass(frozen=True)
class HtmlText:
    """Visible text of a page (not yet cleaned) and its ``<title>``, if any."""

    text: str
    title: str | None


@dataclass(frozen=True)
class HtmlFailure:
    """The parser refused the markup; ``detail`` names the library error."""

    detail: str


def html_to_text(markup: str) -> HtmlText | HtmlFailure:
    """Extract the visible text and title of ``markup``. Never raises."""
    try:
        soup = BeautifulSoup(markup, "html.parser")
        title = _title(soup)
        for tag in soup.find_all(INVISIBLE_TAGS):
            tag.decompose()
        _mark_blocks(soup)
        return HtmlText(soup.get_text(), title)
    except ParserRejectedMarkup as exc:
        return HtmlFailure(f"ParserRejectedMarkup: {exc}")
    except RecursionError:
        return HtmlFailure("RecursionError: markup nested too deeply")


def _title(soup: BeautifulSoup) -> str | None:
    tag = soup.find("title")
    if not isinstance(tag, Tag):
        return None
    title = " ".join(tag.get_text().split())
    return title or None


def _mark_blocks(soup: BeautifulSoup) -> None:
    """Put newlines around block elements and in place of ``<br>``."""
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(BLOCK_TAGS):
        tag.insert_before("\n\n" if tag.name in {"p", "h1", "h2", "h3", "h4", "h5", "h6"} else "\n")
        tag.insert_after("\n")
