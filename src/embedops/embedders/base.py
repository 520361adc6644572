"""The Embedder protocol and the base class that every embedder builds on.

An embedder implements one batch method, ``_embed_batch``; input checks, batching,
L2 normalisation and output validation live once in :class:`BaseEmbedder`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from embedops.errors import InputRejected, PermanentEmbedderError


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


Role = Literal["document", "query"]
ROLES: tuple[Role, ...] = ("document", "query")
MODALITIES: tuple[str, ...] = ("text", "image", "audio")


def check_role(role: str) -> Role:
    """``role`` itself when it is a known role; raises InputRejected otherwise."""
    if role not in ROLES:
        raise InputRejected("role", f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


@dataclass(frozen=True)
class EmbedderInfo:
    """Everything that identifies one model at one revision.

    ``modality`` names the vector space (``text``; a CLIP model's shared space is
    ``image-text``). ``inputs`` says which input modalities each role accepts, and
    ``prefixes`` what each role puts before its text (E5: ``query: `` / ``passage: ``);
    both are part of what the fingerprint covers."""

    name: str
    revision: str
    dim: int
    max_tokens: int
    modality: str
    backend: str
    source: str
    fingerprint: str
    prefixes: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"document": ("text",), "query": ("text",)})

    def prefix(self, role: Role) -> str:
        return self.prefixes.get(role, "")

    def accepts(self, role: Role, modality: str) -> bool:
        return modality in self.inputs.get(role, ())

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@runtime_checkable
class Embedder(Protocol):
    """One model at one revision. Vectors of different fingerprints are never mixed.

    A model embeds in a role: documents when writing, queries when searching. What a
    role changes is the model's business (E5 prefixes, Cohere ``input_type``, CLIP
    towers); a model without roles gives both the same vectors."""

    info: EmbedderInfo
    tokenizer: Tokenizer

    def embed(self, texts: Sequence[str | bytes], role: Role = "document") -> np.ndarray:
        """Return one L2-normalised float32 row per text (or, for a model that embeds
        images or audio, per file's bytes), in input order."""
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
    unnormalised float vectors for a batch of texts). The role's prefix is put before
    each text here; a model whose roles differ otherwise (an API's ``input_type``)
    overrides ``_embed_role``.
    """

    info: EmbedderInfo
    tokenizer: Tokenizer

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        prefix = self.info.prefix(role)
        return self._embed_batch([prefix + t for t in texts] if prefix else texts)

    def embed(self, texts: Sequence[str | bytes], role: Role = "document") -> np.ndarray:
        """Embed ``texts`` in ``role``; raises PermanentEmbedderError on bad input, an
        unknown role or a bad output. A model whose role accepts images or audio takes
        the bytes of a file for each of those items."""
        check_role(role)
        if isinstance(texts, str | bytes):
            raise PermanentEmbedderError("embed() takes a list of texts, not one string")
        items = list(texts)
        self._check_inputs(items, role)
        if not items:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.empty((len(items), self.info.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [items[i] for i in idx]
            out[idx] = self._checked(self._embed_role(batch, role), len(idx))
        return out

    def _check_inputs(self, items: list[str | bytes], role: Role) -> None:
        accepted = self.info.inputs.get(role, ())
        media = any(m != "text" for m in accepted)
        for i, item in enumerate(items):
            if media and isinstance(item, bytes):
                if not item:
                    raise PermanentEmbedderError(f"input {i} is empty (zero bytes)")
            elif not isinstance(item, str) or not item.strip():
                raise PermanentEmbedderError(f"input {i} is empty or not a string")
            elif "text" not in accepted:
                raise PermanentEmbedderError(
                    f"{self.info.name} embeds {', '.join(accepted)} in the {role} role, "
                    f"not text (input {i})")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts to be stored and searched."""
        return self.embed(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries."""
        return self.embed(texts, "query")

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
        return self.embed([text], "query")[0]
