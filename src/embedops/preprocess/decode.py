"""Bytes -> text: byte-order marks, UTF-16/32 by NUL pattern, UTF-8, legacy encodings, binary.

The order of the checks matters and is the contract of :func:`decode_bytes`:

1. known binary file signatures (gzip, zip, PNG, ELF, ...) -> ``binary``;
2. a byte-order mark names the encoding (UTF-32 marks are tested before UTF-16 ones);
3. UTF-32 / UTF-16 without a mark, recognised by where the NUL bytes fall;
4. strict UTF-8 (most files), unless control bytes make up more than 10 % of it -> ``binary``;
5. legacy 8-bit and CJK encodings through charset-normalizer. Legacy text never contains
   C0 control bytes, so more than 1 % of them here means ``binary``.
   Nothing found -> ``undecodable``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from charset_normalizer import from_bytes

#: Signatures of common binary formats, each long enough that no text file starts with it.
#: PDF is not here: it is a parsed kind. Other binaries are caught by their control bytes.
BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x7fELF", "elf"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"(\xb5/\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\x00asm", "wasm"),
    (b"\xca\xfe\xba\xbe", "java-class"),
    (b"OggS\x00", "ogg"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# C0 controls that never occur in text (keeps \t \n \r, form feed and ESC) plus DEL.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_SAMPLE_BYTES = 65536
UTF8_CONTROL_LIMIT = 0.10
LEGACY_CONTROL_LIMIT = 0.01
#: charset-normalizer candidates this close to the best "chaos" score count as a tie.
TIE_MARGIN = 0.1
#: The tie-break: the WHATWG default for legacy Western text (a superset of latin-1's letters).
PREFERRED_LEGACY = "cp1252"


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes; ``confidence`` is 1.0 for marks and valid UTF-8."""

    text: str
    encoding: str
    confidence: float


@dataclass(frozen=True)
class DecodeFailure:
    """Why bytes are not text: ``reason`` is ``binary`` or ``undecodable``."""

    reason: str
    detail: str


def binary_signature(data: bytes) -> str | None:
    """Name of the binary format whose signature starts ``data``, or None."""
    for magic, name in BINARY_SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def control_ratio(data: bytes) -> float:
    """Share of non-text control bytes in the first 64 KiB of ``data`` (0.0 when empty)."""
    sample = data[:_SAMPLE_BYTES]
    if not sample:
        return 0.0
    return (len(sample) - len(sample.translate(None, _CONTROL_BYTES))) / len(sample)


def decode_bytes(data: bytes) -> Decoded | DecodeFailure:
    """Decode any bytes to text, or say why they are not text. Never raises."""
    if not data:
        return Decoded("", "utf-8", 1.0)
    signature = binary_signature(data)
    if signature is not None:
        return DecodeFailure("binary", f"{signature} signature")
    for attempt in (_decode_bom, _decode_wide):
        decoded = attempt(data)
        if decoded is not None:
            return decoded
    return _decode_narrow(data)


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _decode_bom(data: bytes) -> Decoded | None:
    """Decode by byte-order mark; a mark whose codec fails falls through to the next one."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _strict(data[len(bom):], encoding)
            if text is not None:
                return Decoded(text, encoding, 1.0)
    return None


def _nul_share(sample: bytes, offset: int, step: int) -> float:
    column = sample[offset::step]
    return column.count(0) / len(column) if column else 0.0


def _wide_encoding(data: bytes) -> str | None:
    """UTF-32/UTF-16 guessed from NUL columns: ASCII-range text leaves the high bytes zero."""
    sample = data[:_SAMPLE_BYTES]
    if len(sample) >= 8 and len(sample) % 4 == 0:
        shares = [_nul_share(sample, i, 4) for i in range(4)]
        if shares[2] > 0.9 and shares[3] > 0.9 and shares[0] < 0.1:
            return "utf-32-le"
        if shares[0] > 0.9 and shares[1] > 0.9 and shares[3] < 0.1:
            return "utf-32-be"
    if len(sample) >= 4 and len(sample) % 2 == 0:
        even, odd = _nul_share(sample, 0, 2), _nul_share(sample, 1, 2)
        if odd > 0.4 and even < 0.05:
            return "utf-16-le"
        if even > 0.4 and odd < 0.05:
            return "utf-16-be"
    return None


def _decode_wide(data: bytes) -> Decoded | None:
    encoding = _wide_encoding(data)
    if encoding is None:
        return None
    text = _strict(data, encoding)
    return None if text is None else Decoded(text, encoding, 0.9)


def _decode_narrow(data: bytes) -> Decoded | DecodeFailure:
    """UTF-8 first, then charset-normalizer, each with its own control-byte limit."""
    ratio = control_ratio(data)
    text = _strict(data, "utf-8")
    if text is not None:
        if ratio > UTF8_CONTROL_LIMIT:
            return DecodeFailure("binary", f"{ratio:.0%} control bytes")
        return Decoded(text, "utf-8", 1.0)
    if ratio > LEGACY_CONTROL_LIMIT:
        return DecodeFailure("binary", f"{ratio:.1%} control bytes and not UTF-8")
    return _detect_legacy(data)


def _detect_legacy(data: bytes) -> Decoded | DecodeFailure:
    """Ask charset-normalizer; among near-equal candidates prefer :data:`PREFERRED_LEGACY`.

    A candidate stands for every encoding that decodes the bytes to the same text
    (``could_be_from_charset``), so the preferred name is reported when it is one of them.
    """
    matches = list(from_bytes(data))
    if not matches:
        return DecodeFailure("undecodable", "no encoding fits (charset-normalizer)")
    best = matches[0]
    near = [m for m in matches if m.chaos <= best.chaos + TIE_MARGIN]
    chosen = next((m for m in near if PREFERRED_LEGACY in m.could_be_from_charset), best)
    name = PREFERRED_LEGACY if PREFERRED_LEGACY in chosen.could_be_from_charset else chosen.encoding
    return Decoded(str(chosen), name, round(max(0.0, 1.0 - chosen.chaos), 3))
