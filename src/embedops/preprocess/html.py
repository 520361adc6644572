"""HTML -> text with BeautifulSoup and the standard-library parser.

:func:`html_to_text` drops what a reader never sees in the page body (script, style,
noscript, template, head, title, svg, comments), unescapes entities, and turns block
boundaries (paragraphs, headings, list items, table rows, ``<br>``) into newlines so
paragraphs survive for the chunker.
The ``<title>`` becomes the title. Markup the parser refuses yields an :class:`HtmlFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag
from bs4.exceptions import ParserRejectedMarkup

INVISIBLE_TAGS = frozenset((
    "script", "style", "noscript", "template", "head", "title", "svg", "iframe", "object",
))
BLOCK_TAGS = frozenset((
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
    "table", "tbody", "td", "th", "thead", "tfoot", "tr", "ul",
))


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
    """Extract the visible text and title of ``markup``. Never raises; linear time."""
    try:
        soup = BeautifulSoup(markup, "html.parser")
    except ParserRejectedMarkup as exc:
        return HtmlFailure(f"ParserRejectedMarkup: {exc}")
    return HtmlText(_visible_text(soup), _title(soup))


def _title(soup: BeautifulSoup) -> str | None:
    tag = soup.find("title")
    if not isinstance(tag, Tag):
        return None
    title = " ".join(tag.get_text().split())
    return title or None


def _visible_text(soup: BeautifulSoup) -> str:
    """Text nodes in document order, newlines around blocks and for ``<br>``.

    An explicit stack instead of recursion (pages nest deeper than Python's recursion
    limit) and instead of inserting separator nodes into the tree (each insertion costs
    a scan of the siblings, quadratic on long pages).
    """
    parts: list[str] = []
    stack: list[PageElement | None] = [soup]  # None marks the end of a block element
    while stack:
        node = stack.pop()
        if node is None or (isinstance(node, Tag) and node.name == "br"):
            parts.append("\n")
        elif isinstance(node, Tag) and node.name not in INVISIBLE_TAGS:
            if node.name in BLOCK_TAGS:
                parts.append("\n")
                stack.append(None)
            stack.extend(reversed(node.contents))
        elif type(node) in (NavigableString, CData):  # not comments, doctypes, PIs
            parts.append(str(node))
    return "".join(parts)
