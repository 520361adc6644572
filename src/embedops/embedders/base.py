"""The Embedder protocol and the base class that every embedder builds on.

An embedder implements one batch method, ``_embed_batch``; input checks, batching,
L2 normalisation and output validation live once in :class:`BaseEmbedder`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from embedops.errors import PermanentEmbedderError


@runtime_checkable
class Tokenizer(Protocol):
    """What the chunkers need from a model's tokenizer."""

    @property
    def max_content_tokens(self) -> int:
        """Most tokens of text one input may hold (special tokens already subtracted)."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Char span of every token of ``text`` (no special tokens, no truncation)."""
        ...

    def count(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text, without special tokens and without truncation."""
        ...


@dataclass(frozen=True)
class EmbedderInfo:
    """Everything that identifies one model at one revision."""

    name: str
    revision: str
    dim: int
    max_tokens: int
    modality: str
    backend: str
    source: str
    fingerprint: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@runtime_checkable
class Embedder(Protocol):
    """One model at one revision. Vectors of different fingerprints are never mixed."""

    info: EmbedderInfo
    tokenizer: Tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text, in input order."""
        ...


def make_fingerprint(parts: dict[str, object]) -> str:
    """Stable short hash of everything that determines the vectors."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation; zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class BaseEmbedder:
    """Batching, input checks and output validation shared by every embedder.

    Subclasses set ``info`` and ``tokenizer`` and implement ``_embed_batch`` (raw, possibly
    unnormalised float vectors for a batch of texts).
    """

    info: EmbedderInfo
    tokenizer: Tokenizer

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; raises PermanentEmbedderError on bad input or a bad output."""
        if isinstance(texts, str):
            raise PermanentEmbedderError("embed() takes a list of texts, not one string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise PermanentEmbedderError(f"input {i} is empty or not a string")
        if not items:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.empty((len(items), self.info.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._checked(self._embed_batch([items[i] for i in idx]), len(idx))
        return out

    def _checked(self, vectors: np.ndarray, expected: int) -> np.ndarray:
        if vectors.shape != (expected, self.info.dim):
            raise PermanentEmbedderError(
                f"{self.info.name} returned shape {vectors.shape}, "
                f"expected ({expected}, {self.info.dim})"
            )
        if not np.isfinite(vectors).all():
            raise PermanentEmbedderError(f"{self.info.name} returned NaN or inf values")
        return l2_normalise(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a 1-d vector."""
        return self.embed([text])[0]
