"""TEST-ONLY embedder: deterministic feature hashing, no model, no weights.

It exists so unit tests run in milliseconds. Its vectors carry lexical overlap only and
have no semantic quality; it is never offered unless ``EMBEDOPS_ENABLE_TEST_MODELS=1``
is set (test fixtures set it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from embedops.embedders.base import BaseEmbedder, EmbedderInfo, make_fingerprint

TEST_MODEL_NAME = "testing/hash-64"
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class RegexTokenizer:
    """Words and single punctuation marks; a stand-in with the Tokenizer protocol."""

    def __init__(self, max_content_tokens: int = 128) -> None:
        self._max = max_content_tokens

    @property
    def max_content_tokens(self) -> int:
        return self._max

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def count(self, texts: Sequence[str]) -> list[int]:
        return [sum(1 for _ in _TOKEN.finditer(t)) for t in texts]


E5_PREFIXES = {"query": "query: ", "document": "passage: "}


class HashEmbedder(BaseEmbedder):
    """TEST-ONLY. Signed feature hashing of lower-cased words into ``dim`` buckets.

    With ``prefixes`` (``testing/hash-e5-<dim>``) it behaves like an E5 model: each role
    puts its prefix before the text, so the two roles give different vectors."""

    def __init__(self, dim: int = 64, max_tokens: int = 128, batch_size: int = 64,
                 prefixes: dict[str, str] | None = None) -> None:
        super().__init__(batch_size)
        self.tokenizer = RegexTokenizer(max_tokens)
        family = "testing/hash-e5" if prefixes else "testing/hash"
        identity: dict[str, object] = {"name": "testing/hash", "dim": dim, "v": 1}
        if prefixes:
            identity["prefixes"] = prefixes
        self.info = EmbedderInfo(
            name=TEST_MODEL_NAME if (dim, family) == (64, "testing/hash")
            else f"{family}-{dim}",
            revision="1",
            dim=dim,
            max_tokens=max_tokens,
            modality="text",
            backend="numpy",
            source="built-in (test-only)",
            fingerprint=make_fingerprint(identity),
            prefixes=dict(prefixes or {}),
        )

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.info.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()[: self.info.max_tokens * 32]):
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.info.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return out
