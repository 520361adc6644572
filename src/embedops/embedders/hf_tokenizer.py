"""A model's own fast tokenizer (the ``tokenizers`` library), without torch.

Two configured copies are kept: one for chunking (no truncation, no padding, no special
tokens) and one for model input (truncate to the model's sequence length, pad to the
longest item of the batch).

A long text is tokenized for chunking in pieces cut where a run of spaces starts,
through ``encode_batch``: one ``encode`` of a 1 MB text holds Python's global lock for
about a second (every other thread of a serving process — the queries — waits), while
``encode_batch`` releases it. This is done only when the tokenizer's pre-tokenizer always
splits at a space (BERT's, whitespace, byte-level BPE, Metaspace with ``split``), so the
tokens and their offsets are exactly those of one call
(tests/embedders/test_tokenizer_pieces.py); any other tokenizer gets one call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer as _HFTokenizer

from embedops.errors import ModelNotFound

PIECE_CHARS = 16_384  # a piece tokenizes in ~15 ms on this CPU


class HFTokenizer:
    """Implements the chunkers' ``Tokenizer`` protocol and prepares model inputs."""

    def __init__(self, tokenizer_json: Path, max_seq_length: int) -> None:
        if not tokenizer_json.is_file():
            raise ModelNotFound(f"tokenizer file missing: {tokenizer_json}")
        self._plain = _HFTokenizer.from_file(str(tokenizer_json))
        self._plain.no_truncation()
        self._plain.no_padding()
        self._model = _HFTokenizer.from_file(str(tokenizer_json))
        self._model.enable_truncation(max_seq_length)
        pad_id = self._model.token_to_id("[PAD]")
        if pad_id is None:
            pad_id = self._model.token_to_id("<pad>") or 0
        self._model.enable_padding(pad_id=pad_id)
        self.max_seq_length = max_seq_length
        self._special = self._model.num_special_tokens_to_add(False)
        self._cuttable = splits_at_spaces(json.loads(self._plain.to_str()).get("pre_tokenizer"))

    @property
    def max_content_tokens(self) -> int:
        return self.max_seq_length - self._special

    def offsets(self, text: str) -> list[tuple[int, int]]:
        starts = piece_starts(text, PIECE_CHARS) if self._cuttable else [0]
        pieces = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
        encodings = self._plain.encode_batch(pieces, add_special_tokens=False)
        return [(base + start, base + end)
                for base, encoding in zip(starts, encodings, strict=True)
                for start, end in encoding.offsets if end > start]

    def count(self, texts: Sequence[str]) -> list[int]:
        encodings = self._plain.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    @property
    def vocab_size(self) -> int:
        return int(self._plain.get_vocab_size())

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids of this tokenizer (special tokens dropped)."""
        return str(self._plain.decode(list(ids), skip_special_tokens=True))

    def model_inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Padded int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids``."""
        encodings = self._model.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


_SPLIT_AT_SPACES = frozenset({"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "ByteLevel"})
_SPLIT_FURTHER = frozenset({"Split", "Punctuation", "Digits", "UnicodeScripts"})


def splits_at_spaces(pre_tokenizer: dict[str, Any] | None) -> bool:
    """Whether a pre-tokenizer (its JSON form) ends a word at every space, so a text cut
    just before a space tokenizes as it would whole."""
    if not pre_tokenizer:
        return False
    kind = pre_tokenizer.get("type")
    if kind in _SPLIT_AT_SPACES:
        return True
    if kind == "Metaspace":
        return bool(pre_tokenizer.get("split", True))
    if kind == "Sequence":
        members = pre_tokenizer.get("pretokenizers") or []
        return (any(splits_at_spaces(m) for m in members)
                and all(splits_at_spaces(m) or m.get("type") in _SPLIT_FURTHER
                        for m in members))
    return False


def piece_starts(text: str, size: int) -> list[int]:
    """Where each piece of ``text`` starts: at 0, then at the first start of a run of
    spaces at or after every ``size`` characters (a text without one stays whole)."""
    starts = [0]
    at = size
    while at < len(text):
        cut = _whitespace_run_start(text, at)
        if cut is None:
            break
        starts.append(cut)
        at = cut + size
    return starts


def _whitespace_run_start(text: str, at: int) -> int | None:
    for i in range(at, len(text)):
        if text[i] == " " and not text[i - 1].isspace():
            return i
    return None
