"""Hybrid routing: the real-time path and the batch path may use different endpoints
(e.g. a hosted API at ingest time, a self-hosted server for bulk), but their vectors feed
one collection only if both paths run the same model.

Names alone cannot prove that (``openai-compatible/bge-small`` on two servers may be two
revisions, two poolings or two quantisations), so :func:`check_equivalent` embeds probe
texts through both and requires every pair to have cosine >= 0.99. When the check passes,
the real-time embedder is presented under the batch embedder's identity (fingerprint,
tokenizer), so both paths write one collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedops.config import Settings
from embedops.embedders.base import Embedder, EmbedderInfo, Role, Tokenizer
from embedops.embedders.factory import load_embedder
from embedops.errors import FingerprintMismatch

MIN_COSINE = 0.99
PROBE_TEXTS: tuple[str, ...] = (
    "How do I reset my password?",
    "The quarterly revenue grew by 12% compared to last year.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "def add(a, b): return a + b",
    "Le chat dort sur le canapé depuis ce matin.",
    "Shipping to Canada takes five to seven business days.",
    "A short one.",
    "Vector search finds the nearest neighbours of a query embedding.",
)


def check_equivalent(first: Embedder, second: Embedder,
                     probes: Sequence[str] = PROBE_TEXTS,
                     min_cosine: float = MIN_COSINE) -> float:
    """Smallest cosine between the two embedders' vectors of ``probes``. Raises
    :class:`FingerprintMismatch` when dimensions differ or any cosine is below
    ``min_cosine``, explaining why mixing them would corrupt a collection."""
    a, b = first.info, second.info
    if a.dim != b.dim:
        raise FingerprintMismatch(_explain(a, b, f"dimensions {a.dim} and {b.dim} differ"))
    left = np.vstack([first.embed(list(probes), r) for r in ("document", "query")])
    right = np.vstack([second.embed(list(probes), r) for r in ("document", "query")])
    worst = float(np.min(np.sum(left * right, axis=1)))
    if worst < min_cosine:
        raise FingerprintMismatch(_explain(
            a, b, f"probe texts reach cosine {worst:.4f} < {min_cosine} between them"))
    return worst


def _explain(a: EmbedderInfo, b: EmbedderInfo, why: str) -> str:
    return (f"real-time model {a.name} ({a.source}) and batch model {b.name} ({b.source}) "
            f"are not the same model: {why}. Vectors of different models live in "
            "different spaces; mixed in one collection, queries embedded by one path "
            "silently miss documents embedded by the other. Route both paths to the same "
            "model, or migrate the collection to the new model (build a new collection "
            "and swap the alias).")


class SameSpaceEmbedder:
    """An embedder proven equivalent to another, presented under that one's identity."""

    def __init__(self, inner: Embedder, info: EmbedderInfo, tokenizer: Tokenizer) -> None:
        self.inner, self.info, self.tokenizer = inner, info, tokenizer

    def embed(self, texts: Sequence[str], role: Role = "document") -> np.ndarray:
        return self.inner.embed(texts, role)


@dataclass(frozen=True)
class HybridEmbedders:


    realtime: Embedder
    batch: Embedder
    probe_cosine: float  # the smallest cosine the check measured


def load_hybrid(settings: Settings, min_cosine: float = MIN_COSINE) -> HybridEmbedders:
    """Embedders for the real-time and batch paths (``realtime_model``/``realtime_api_base``
    and ``batch_model``/``batch_api_base``, each falling back to ``model``/``api_base``),
    checked equivalent. Raises FingerprintMismatch when they are not."""
    s = settings
    realtime = load_embedder(s.realtime_model or s.model, s.cache_dir, s.backend,
                             s.batch_size, settings=s, api_base=s.realtime_api_base)
    batch = load_embedder(s.batch_model or s.model, s.cache_dir, s.backend, s.batch_size,
                          settings=s, api_base=s.batch_api_base)
    worst = check_equivalent(realtime, batch, min_cosine=min_cosine)
    if realtime.info.fingerprint != batch.info.fingerprint:
        realtime = SameSpaceEmbedder(realtime, batch.info, batch.tokenizer)
    return HybridEmbedders(realtime, batch, worst)


def uses_hybrid(settings: Settings) -> bool:
    """True when a real-time or batch model or endpoint of its own is configured."""
    s = settings
    return any(v is not None for v in (s.realtime_model, s.realtime_api_base,
                                       s.batch_model, s.batch_api_base))


def batch_settings(settings: Settings) -> Settings:
    """The settings the batch path embeds with: ``batch_model``/``batch_api_base``,
    each falling back to ``model``/``api_base``."""
    return settings.model_copy(update={
        "model": settings.batch_model or settings.model,
        "api_base": settings.batch_api_base or settings.api_base})


def served_embedder(settings: Settings) -> Embedder:
    """The embedder a service's real-time path and ``/v1/embeddings`` use: with hybrid
    routing configured, the real-time embedder, checked equivalent to the batch one
    and presented under its identity (so both paths write the same collections)."""
    if uses_hybrid(settings):
        return load_hybrid(settings).realtime
    s = settings
    return load_embedder(s.model, s.cache_dir, s.backend, s.batch_size, settings=s)
