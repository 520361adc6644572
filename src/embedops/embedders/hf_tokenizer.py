"""A model's own fast tokenizer (the ``tokenizers`` library), without torch.

Two configured copies are kept: one for chunking (no truncation, no padding, no special
tokens) and one for model input (truncate to the model's sequence length, pad to the
longest item of the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as _HFTokenizer

from embedops.errors import ModelNotFound


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

    @property
    def max_content_tokens(self) -> int:
        return self.max_seq_length - self._special

    def offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self._plain.encode(text, add_special_tokens=False)
        return [(start, end) for start, end in encoding.offsets if end > start]

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
