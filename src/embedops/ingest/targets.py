"""Where a write goes: the collection a name (or alias) points at *now*, with the
embedder and chunker of that collection's model.

Aliases are resolved when a write is applied, not when it is queued, so a write queued
before an alias swap lands in the collection the alias points at when it is written.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from embedops.config import Settings
from embedops.embedders import Embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.base import Role
from embedops.ingest.chunking import Chunker, make_chunker
from embedops.ingest.write import Target
from embedops.store.protocol import CollectionInfo, VectorStore


class EmbedderPool:
    """Embedders by fingerprint, loaded once, plus one lock that serialises every model
    call of the process (models and tokenizers are not re-entrant)."""

    def __init__(self, settings: Settings, served: Sequence[Embedder] = ()) -> None:
        self.settings = settings
        self.model_lock = threading.Lock()
        self._lock = threading.Lock()
        self._embedders: dict[str, Embedder] = {e.info.fingerprint: e for e in served}
        self._chunkers: dict[str, Chunker] = {}

    def add(self, embedder: Embedder) -> None:
        """Offer an already loaded embedder (the one a service serves, say)."""
        with self._lock:
            self._embedders.setdefault(embedder.info.fingerprint, embedder)

    def get(self, model: str, fingerprint: str) -> Embedder:
        """The embedder whose vectors carry ``fingerprint``; raises FingerprintMismatch."""
        with self._lock:
            if fingerprint not in self._embedders:
                s = self.settings
                self._embedders[fingerprint] = load_matching_embedder(
                    model, fingerprint, s.cache_dir, s.backend, s.batch_size, settings=s)
            return self._embedders[fingerprint]

    def chunker(self, model: str) -> Chunker:
        """The chunker of ``settings`` with ``model``'s tokenizer (as the batch path)."""
        with self._lock:
            if model not in self._chunkers:
                tokenizer = load_tokenizer(model, self.settings.cache_dir)
                self._chunkers[model] = make_chunker(self.settings, tokenizer)
            return self._chunkers[model]

    def locked(self, embedder: Embedder) -> Embedder:
        """``embedder`` whose calls take the pool's model lock."""
        return _LockedEmbedder(self.model_lock, embedder)

    def target(self, info: CollectionInfo) -> Target:
        """A write target for ``info`` whose model calls take the model lock."""
        embedder = self.get(info.model, info.fingerprint)
        return Target(info, self.locked(embedder), self.chunker(info.model))


class _LockedEmbedder:
    """An embedder whose calls take a shared model lock."""

    def __init__(self, lock: threading.Lock, inner: Embedder) -> None:
        self.info, self.tokenizer, self._lock, self._inner = (
            inner.info, inner.tokenizer, lock, inner)

    def embed(self, texts: Sequence[str], role: Role = "document") -> Any:
        with self._lock:
            return self._inner.embed(texts, role)


def resolve_targets(store: VectorStore, pool: EmbedderPool, name: str) -> list[Target]:
    """The collections a write to ``name`` goes to, resolved now: the collection the
    name (or alias) points at, first."""
    return [pool.target(store.get_collection(name))]
