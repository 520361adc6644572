"""A battery of hostile input files, built in memory, each with its expected outcome.

Nothing binary is committed: :func:`write_battery` writes every file under a directory
(a pytest ``tmp_path``) and returns the paths. Expectations describe the outcome only
through observable facts: how many documents, which rejection reasons, which substrings
must (or must not) be in the cleaned text, the detected encoding and the title.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader, PdfWriter

LATIN1_TEXT = (
    "Café crème, déjà vu: à la française, naïve façade près du théâtre. Où est le garçon?"
)
CP1252_TEXT = (
    "\u201cSmart quotes\u201d \u2014 and an em dash, it\u2019s the café\u2019s menu\u2026 "
    "really."
)
MIXED_SCRIPTS = (
    "English text. Русский текст. 中文文本和日本語のテキスト. النص العربي هنا. "
    "Emoji: 🙂 👍🏽 and a family 👨\u200d👩\u200d👧 together."
)
PDF_SENTENCE = "Hello PDF world, this page has real extractable text."
PDF_TITLE = "A Small Test Document"


@dataclass(frozen=True)
class Expect:
    """The observable outcome of preprocessing one file."""

    documents: int = 1
    rejected: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    encoding: str | None = None
    title: str | None = None
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NastyFile:
    """One file of the battery: its name (extension matters), bytes and expected outcome."""

    name: str
    data: bytes
    expect: Expect = field(default_factory=Expect)


def reject(reason: str) -> Expect:
    """Expectation: no document, exactly one rejection with ``reason``."""
    return Expect(documents=0, rejected=(reason,))


def minimal_pdf(text: str, title: str) -> bytes:
    """A valid one-page PDF (Helvetica, one text line) with a title, written by hand."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % title.encode("latin-1"),
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    return out + b"startxref\n%d\n%%%%EOF\n" % xref


def encrypted_pdf(text: str) -> bytes:
    """The minimal PDF, encrypted with a user password (RC4, no crypto package needed)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf(text, "secret"))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _html_page() -> bytes:
    return (
        b"<!DOCTYPE html><html><head><title>Caf&eacute; &amp; Menu</title>"
        b"<style>body { color: red; }</style><script>alert('pwned');</script></head>"
        b"<body><h1>Today&#39;s specials</h1><p>Caf&eacute; cr&egrave;me &amp; "
        b"croissants &lt;fresh&gt; &#8212; only &euro;3.</p><noscript>enable js</noscript>"
        b"<ul><li>Tea</li><li>Coffee</li></ul><!-- hidden comment --></body></html>"
    )


def _jsonl_records() -> bytes:
    lines = [
        json.dumps({"_id": "d1", "title": "First", "text": "The first record is fine.",
                    "lang": "en"}),
        '{"_id": "d2", "text": "this line is cut',
        json.dumps({"id": 3, "text": "Accepted through the plain id field."}),
        json.dumps({"_id": "d4", "title": "No text field here"}),
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json_array() -> bytes:
    records = [
        {"_id": "a", "text": "Alpha record text.", "metadata": {"source": "unit"}},
        {"_id": "b", "text": "Beta record text.", "title": "Beta"},
    ]
    return json.dumps(records).encode("utf-8")


def _text_files() -> list[NastyFile]:
    hello16 = "Hello world, this is UTF-16 text with an accent: é."
    return [
        NastyFile("utf16le_bom.txt", codecs.BOM_UTF16_LE + hello16.encode("utf-16-le"),
                  Expect(contains=("UTF-16 text", "é"), encoding="utf-16-le")),
        NastyFile("utf16be_nobom.txt", hello16.encode("utf-16-be"),
                  Expect(contains=("UTF-16 text", "é"), encoding="utf-16-be")),
        NastyFile("utf16le_nobom.txt", hello16.encode("utf-16-le"),
                  Expect(contains=("UTF-16 text",), encoding="utf-16-le")),
        NastyFile("utf32.txt", "UTF-32 with a mark: Grüße 🙂".encode("utf-32"),
                  Expect(contains=("Grüße 🙂",), encoding="utf-32-le")),
        NastyFile("utf32be_nobom.txt", "UTF-32 big endian, no mark.".encode("utf-32-be"),
                  Expect(contains=("big endian",), encoding="utf-32-be")),
        NastyFile("utf8_bom.txt", codecs.BOM_UTF8 + b"Byte order mark first.",
                  Expect(contains=("Byte order mark first.",), absent=("\ufeff",),
                         encoding="utf-8")),
        NastyFile("latin1.txt", LATIN1_TEXT.encode("latin-1"),
                  Expect(contains=("Café crème", "déjà vu", "garçon"), encoding="cp1252")),
        NastyFile("cp1252.txt", CP1252_TEXT.encode("cp1252"),
                  Expect(contains=("\u201cSmart quotes\u201d \u2014", "café\u2019s"),
                         encoding="cp1252")),
        NastyFile("cp1251.txt",
                  "Привет, как дела? Это обычный русский текст в старой кодировке.".encode(
                      "cp1251"), Expect(contains=("русский текст",))),
        NastyFile("shift_jis.txt",
                  "これは日本語のテキストです。東京は大きな都市です。".encode("shift_jis"),
                  Expect(contains=("東京は大きな都市",))),
    ]


def _hostile_files() -> list[NastyFile]:
    return [
        NastyFile("empty.txt", b"", reject("empty")),
        NastyFile("whitespace.txt", b" \t\r\n \n\t\t  \r\n", reject("empty")),
        NastyFile("random.txt", os.urandom(4096), reject("binary")),
        NastyFile("gzip.txt", gzip.compress(b"compressed text " * 50, mtime=0), reject("binary")),
        NastyFile("nul_bytes.txt", b"Some text\x00 with a few NUL\x00 bytes inside it.",
                  Expect(contains=("Some text with a few NUL bytes",), absent=("\x00",))),
        NastyFile("zero_width_only.txt", ("\u200b\u200c\u200d\u2060\ufeff" * 40).encode(),
                  reject("empty")),
        NastyFile("controls.txt",
                  b"Bell\x07 and back\x08space, \x1b[31mred\x1b[0m, form\x0cfeed\x7f end.",
                  Expect(contains=("Bell and backspace, red, form\nfeed end.",))),
        NastyFile("one_mb_line.txt", ("lorem ipsum dolor " * 58255)[:1_000_000].encode(),
                  Expect(contains=("lorem ipsum dolor",), absent=("\n",))),
        NastyFile("mojibake.txt", "The café was nice".encode().decode("latin-1").encode(),
                  Expect(contains=("The café was nice",), absent=("Ã",))),
        NastyFile("mixed_scripts.txt", MIXED_SCRIPTS.encode("utf-8"),
                  Expect(contains=("Русский", "中文文本", "日本語", "العربي", "👍🏽",
                                   "👨\u200d👩\u200d👧"))),
        NastyFile("symbols.txt", b"!@#$%^&*()_+{}|:<>?~`-=[];',./ " * 8, reject("garbage")),
        NastyFile("replacement.txt", ("\ufffd\ufffd\ufffd ok " * 20).encode(),
                  reject("garbage")),
        NastyFile("private_use.txt", ("\ue000\ue001\ue002\ue003\ue004 ab " * 30).encode(),
                  reject("garbage")),
        NastyFile("one_letter.txt", b"a", reject("too_short")),
        NastyFile("html_in_txt.txt", b"<p>Markup in a text file stays text.</p>",
                  Expect(contains=("<p>Markup in a text file stays text.</p>",))),
    ]


def _structured_files() -> list[NastyFile]:
    return [
        NastyFile("page.html", _html_page(),
                  Expect(contains=("Today's specials", "Café crème & croissants <fresh> — "
                                   "only €3.", "Tea\n\nCoffee"),
                         absent=("alert", "color", "enable js", "hidden comment", "<h1>"),
                         title="Café & Menu")),
        NastyFile("readme.md", b"# Title\n\nSome *Markdown* text.\n\n\n\n\n- item one\n",
                  Expect(contains=("# Title\n\nSome *Markdown* text.\n\n- item one",))),
        NastyFile("real.pdf", minimal_pdf(PDF_SENTENCE, PDF_TITLE),
                  Expect(contains=(PDF_SENTENCE,), title=PDF_TITLE)),
        NastyFile("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R",
                  reject("malformed_pdf")),
        NastyFile("encrypted.pdf", encrypted_pdf(PDF_SENTENCE), reject("encrypted")),
        NastyFile("records.jsonl", _jsonl_records(),
                  Expect(documents=2, rejected=("malformed_record", "missing_field"),
                         contains=("The first record is fine.",), ids=("d1", "3"))),
        NastyFile("records.json", _json_array(),
                  Expect(documents=2, contains=("Alpha record text.", "Beta record text."),
                         ids=("a", "b"))),
        NastyFile("deep.json", b"[" * 100_000, reject("malformed_record")),
    ]


def battery() -> list[NastyFile]:
    """Every file of the battery (fresh random bytes each call)."""
    return [*_text_files(), *_hostile_files(), *_structured_files()]


def write_battery(directory: Path) -> dict[str, Path]:
    """Write the battery under ``directory``; returns name -> path."""
    paths = {}
    for item in battery():
        path = directory / item.name
        path.write_bytes(item.data)
        paths[item.name] = path
    return paths
