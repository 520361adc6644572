"""Vector stores behind one ``VectorStore`` protocol; ``open_store`` opens one by URL."""

from __future__ import annotations

from embedops.store.embedded import EmbeddedStore
from embedops.store.factory import local_directory, open_store, parse_store_url, store_backends
from embedops.store.hnsw_index import estimate_memory
from embedops.store.protocol import (
    EXTERNAL_FINGERPRINT,
    EXTERNAL_MODEL,
    CollectionInfo,
    Hit,
    IndexMaintenance,
    Point,
    RenameBehindAlias,
    VectorStore,
)

__all__ = [
    "EXTERNAL_FINGERPRINT",
    "EXTERNAL_MODEL",
    "CollectionInfo",
    "EmbeddedStore",
    "Hit",
    "IndexMaintenance",
    "Point",
    "RenameBehindAlias",
    "VectorStore",
    "estimate_memory",
    "local_directory",
    "open_store",
    "parse_store_url",
    "store_backends",
]
