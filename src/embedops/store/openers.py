"""The entry points of the remote store schemes (``embedops.stores`` in pyproject.toml).

Each opener imports its adapter (and the adapter its client library) only when a store of
that scheme is opened, so listing the schemes costs nothing and a missing client library
is one clear ``ConfigError`` instead of an import failure.
"""

from __future__ import annotations

from embedops.errors import ConfigError
from embedops.store.protocol import VectorStore


def _missing(scheme: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"the {scheme}:// store needs its client library ({exc.name}): "
                       "pip install 'embedops[remote]'")


def open_milvus(location: str, read_only: bool) -> VectorStore:
    """``milvus://host:19530/db``: a Milvus server or cluster."""
    try:
        from embedops.store.milvus import MilvusStore
    except ImportError as exc:
        raise _missing("milvus", exc) from exc
    return MilvusStore(location, read_only=read_only)


def open_milvus_lite(location: str, read_only: bool) -> VectorStore:
    """``milvus-lite:///path/file.db``: milvus-lite in this process, data in that path."""
    try:
        from embedops.store.milvus import MilvusStore
    except ImportError as exc:
        raise _missing("milvus-lite", exc) from exc
    return MilvusStore(location, read_only=read_only)


def open_pgvector(location: str, read_only: bool) -> VectorStore:
    """``postgresql://user@host:5432/db?schema=embedops``: PostgreSQL with pgvector."""
    try:
        from embedops.store.pgvector import PgVectorStore
    except ImportError as exc:
        raise _missing("postgresql", exc) from exc
    return PgVectorStore(location, read_only=read_only)
