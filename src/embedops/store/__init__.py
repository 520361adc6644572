"""Vector stores behind one ``VectorStore`` protocol; ``open_store`` opens the embedded one."""

from __future__ import annotations

from pathlib import Path

from embedops.store.embedded import EmbeddedStore
from embedops.store.hnsw_index import estimate_memory
from embedops.store.protocol import CollectionInfo, Hit, Point, VectorStore

__all__ = [
    "CollectionInfo",
    "EmbeddedStore",
    "Hit",
    "Point",
    "VectorStore",
    "estimate_memory",
    "open_store",
]


def open_store(path: str | Path, read_only: bool = False) -> EmbeddedStore:
    """Open (creating if needed, unless ``read_only``) the embedded store at ``path``.

    A read-write handle holds the store's single-writer lock until ``close()``; a second
    writer gets ``StoreLocked``. Read-only handles never block and see committed data.
    """
    return EmbeddedStore(path, read_only=read_only)
