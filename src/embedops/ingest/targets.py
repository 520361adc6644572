"""Where a write goes: the collection a name (or alias) points at *now*, with the
embedder and chunker of that collection's model.

Aliases are resolved when a write is applied, not when it is queued, so a write queued
before an alias swap lands in the collection the alias points at when it is written.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence

import numpy as np

from embedops.config import Settings
from embedops.embedders import Embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.base import Role
from embedops.embedders.scheduling import ModelLock
from embedops.ingest.chunking import Chunker, make_chunker
from embedops.ingest.write import Target
from embedops.ledger import Ledger
from embedops.store.protocol import CollectionInfo, VectorStore


class EmbedderPool:
    """Embedders by fingerprint, loaded once, plus one lock that serialises every model
    call of the process (models and tokenizers are not re-entrant). Requests waiting for
    an answer take ``model_lock`` with priority over the writes of ``locked`` embedders
    (see ``embedders/scheduling.py``)."""

    def __init__(self, settings: Settings, served: Sequence[Embedder] = (),
                 background_threads: int = 0) -> None:
        """``background_threads`` > 0 (the serving process): background writes run on
        a model instance of their own with that many threads, where the backend can
        make one (ONNX), instead of taking turns with queries on the shared one."""
        self.settings = settings
        self.model_lock = ModelLock()
        self.background_threads = background_threads
        self._lock = threading.Lock()
        self._embedders: dict[str, Embedder] = {e.info.fingerprint: e for e in served}
        self._background: dict[str, Embedder] = {}
        self._chunkers: dict[str, Chunker] = {}

    def add(self, embedder: Embedder) -> None:
        """Offer an already loaded embedder (the one a service serves, say)."""
        with self._lock:
            self._embedders.setdefault(embedder.info.fingerprint, embedder)

    def offer(self, embedder: Embedder) -> None:
        """Offer a caller's embedder (another framework's embeddings, adapted) together
        with its tokenizer: embedops may know no tokenizer of that model to chunk with."""
        with self._lock:
            self._embedders.setdefault(embedder.info.fingerprint, embedder)
            self._chunkers.setdefault(embedder.info.name,
                                      make_chunker(self.settings, embedder.tokenizer))

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
        """``embedder`` for background writes: its own instance with
        ``background_threads`` threads when the pool has them and the backend can make
        one (same vectors; the OS runs queries first, see ``lower_priority``; a lock of
        its own runs one background writer's forward pass at a time); else calls that
        take the pool's model lock at background priority, one forward pass
        (``batch_size`` texts) per hold."""
        own = self._background_instance(embedder)
        if own is not None:
            return own
        size = getattr(embedder, "batch_size", None) or self.settings.batch_size
        return _LockedEmbedder(self.model_lock, embedder, int(size))

    def _background_instance(self, embedder: Embedder) -> Embedder | None:
        make = getattr(embedder, "with_threads", None)
        if self.background_threads < 1 or make is None:
            return None
        fingerprint = embedder.info.fingerprint
        with self._lock:
            if fingerprint not in self._background:
                own = make(self.background_threads)
                if own.info.fingerprint != fingerprint:  # never mix two models' vectors
                    return None
                # one forward pass at a time on it: background writers also embed with
                # no write gate held (a migration's batch, ``embed_ahead``), and a
                # model's tokenizer is not re-entrant
                size = getattr(own, "batch_size", None) or self.settings.batch_size
                self._background[fingerprint] = _LockedEmbedder(ModelLock(), own, int(size))
            return self._background[fingerprint]

    def target(self, info: CollectionInfo) -> Target:
        """A write target for ``info`` whose model calls take the model lock."""
        embedder = self.get(info.model, info.fingerprint)
        return Target(info, self.locked(embedder), self.chunker(info.model))


class _LockedEmbedder:
    """An embedder whose calls take a shared model lock at background priority, one
    forward pass at a time, so a waiting query gets the model between two passes.

    The texts are ordered by length and cut into slices of ``slice_size`` exactly as
    ``BaseEmbedder.embed`` batches them, so each slice is one of the forward passes the
    whole call would have made and the vectors are the same."""

    def __init__(self, lock: ModelLock, inner: Embedder, slice_size: int) -> None:
        self.info, self.tokenizer, self._lock, self._inner = (
            inner.info, inner.tokenizer, lock, inner)
        self.slice_size = max(1, slice_size)

    def embed(self, texts: Sequence[str], role: Role = "document") -> np.ndarray:
        if isinstance(texts, str) or len(texts) <= self.slice_size:
            with self._lock.background():  # the inner embedder checks the input
                return self._inner.embed(texts, role)
        items = list(texts)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.empty((len(items), self.info.dim), dtype=np.float32)
        for start in range(0, len(order), self.slice_size):
            idx = order[start : start + self.slice_size]
            with self._lock.background():
                out[idx] = self._inner.embed([items[i] for i in idx], role)
        return out


def lower_priority(nice: int) -> None:
    """Make the calling thread ``nice`` steps less important to the OS scheduler (Linux
    schedules threads, so this is per thread): background writers yield the CPU to
    queries and the HTTP loop when both want it, and use it fully when idle."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):  # not permitted here: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def resolve_targets(store: VectorStore, pool: EmbedderPool, name: str,
                    ledger: Ledger | None = None) -> list[Target]:
    """The collections a write to ``name`` goes to, resolved now: the collection the
    name (or alias) points at, first, then the collections a model migration keeps
    current beside it (its shadow while backfilling; after a swap, the previous one for
    the rollback window)."""
    info = store.get_collection(name)
    names = ledger.dual_write_targets(info.name) if ledger is not None else []
    return [pool.target(info)] + [pool.target(store.get_collection(n)) for n in names]


def extra_targets(store: VectorStore, pool: EmbedderPool, ledger: Ledger,
                  collection: str) -> list[Target]:
    """The dual-write targets of ``collection`` alone (without it)."""
    return [pool.target(store.get_collection(n)) for n in ledger.dual_write_targets(collection)]
