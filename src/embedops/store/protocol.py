"""The ``VectorStore`` protocol and the value types every store backend returns.

Every backend (the embedded default, later remote adapters) implements this protocol and
passes the contract suite in ``tests/store/test_contract.py``. Every method that takes a
``collection`` name also accepts an alias, which is resolved first.

Scores are similarities where higher is better: cosine similarity for ``cosine``, the dot
product for ``ip`` and the negated squared Euclidean distance for ``l2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from embedops.errors import CollectionNotFound, StoreError
from embedops.store.payload_json import payload_of

Metric = Literal["cosine", "ip", "l2"]
StorageDType = Literal["float32", "float16", "int8"]
Filter = Mapping[str, Any] | str

METRICS: tuple[str, ...] = ("cosine", "ip", "l2")
# The model (and fingerprint) of a collection whose vectors are computed elsewhere: it
# takes raw vectors of its dimension, and never documents (there is no model to embed).
EXTERNAL_MODEL = "external"
EXTERNAL_FINGERPRINT = "external"
DTYPES: tuple[str, ...] = ("float32", "float16", "int8")
DEFAULT_K = 10  # the hits a search returns unless it asks for another number


def check_ef(ef: object) -> None:
    """A search's depth ``ef``: None (the collection's own) or a positive integer."""
    if ef is not None and (not isinstance(ef, int) or isinstance(ef, bool) or ef < 1):
        raise StoreError(f"ef must be a positive integer or None, got {ef!r}")


class Hit:
    """One search result: the point's id, its similarity score and its payload.

    Immutable, like a frozen dataclass of those three fields. A store may hand out hits
    whose payload is still the JSON text it keeps (``Hit.from_text``): the text is
    decoded on the first read of ``payload``, so a caller that reads only ids and scores
    pays for no JSON decoding.
    """

    __slots__ = ("_payload", "_text", "id", "score")
    __match_args__ = ("id", "score", "payload")
    id: str
    score: float

    def __init__(self, id: str, score: float, payload: dict[str, Any]) -> None:
        _set_id(self, id)
        _set_score(self, score)
        _set_payload(self, payload)
        _set_text(self, None)

    @classmethod
    def from_text(cls, id: str, score: float, text: str) -> Hit:
        """A hit whose payload is the JSON object ``text``, decoded when first read."""
        hit = _new(cls)
        _set_id(hit, id)
        _set_score(hit, score)
        _set_payload(hit, None)
        _set_text(hit, text)
        return hit

    @classmethod
    def many_from_text(cls, rows: Iterable[Sequence[Any]], scores: Iterable[float],
                       scale: float = 1.0) -> list[Hit]:
        """``from_text(row[1], score * scale, row[2])`` for each row and score in step:
        rows as the embedded store reads them, ``(rowkey, id, payload text)``. One
        call for a search's hits. Each is filled in as an ``_OpenHit``, whose slots
        take plain assignments, and then becomes a ``Hit``: setting a ``Hit``'s slots
        through their descriptors took 48k CPU instructions for 10 hits, this 26k
        (a whole search of 4,500 MiniLM vectors is now ~290k)."""
        if cls is not Hit:  # (a subclass may lay its slots out otherwise)
            return [cls.from_text(row[1], score * scale, row[2])
                    for row, score in zip(rows, scores, strict=True)]
        hits = []
        append = hits.append
        for row, score in zip(rows, scores, strict=True):
            hit = _OpenHit()
            hit.id = row[1]
            hit.score = score * scale
            hit._payload = None
            hit._text = row[2]
            hit.__class__ = Hit  # type: ignore[assignment]
            append(hit)
        return hits  # type: ignore[return-value]

    @property
    def payload(self) -> dict[str, Any]:
        payload = self._payload
        if payload is None and self._text is not None:
            payload = payload_of(self._text)
            _set_payload(self, payload)
        return payload

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Hit)
        return (self.id, self.score, self.payload) == (other.id, other.score, other.payload)

    def __hash__(self) -> int:  # (a dict payload makes it unhashable, as for the dataclass)
        return hash((self.id, self.score, self.payload))

    def __repr__(self) -> str:
        return f"Hit(id={self.id!r}, score={self.score!r}, payload={self.payload!r})"

    def __reduce__(self) -> tuple[type[Hit], tuple[str, float, dict[str, Any]]]:
        return (Hit, (self.id, self.score, self.payload))


class _OpenHit:
    """``Hit``'s slots, laid out as ``Hit`` lays them out, without its refusal to
    change: ``Hit.many_from_text`` fills one in, then makes it a ``Hit``."""

    __slots__ = ("_payload", "_text", "id", "score")


_new = object.__new__
# (slot setters: ``__setattr__`` refuses assignment, and these are the quickest way past it)
_set_id = Hit.id.__set__  # type: ignore[attr-defined]
_set_score = Hit.score.__set__  # type: ignore[attr-defined]
_set_payload = Hit._payload.__set__  # type: ignore[attr-defined]
_set_text = Hit._text.__set__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Point:
    """A stored point. ``vector`` is ``None`` unless requested with ``with_vectors=True``."""

    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """Everything a collection was built with, plus its current point count."""

    name: str
    dim: int
    metric: str
    dtype: str
    fingerprint: str
    model: str
    index_params: dict[str, Any]
    payload_indexes: tuple[str, ...]
    created_at: str
    points: int
    seq: int = 0
    aliases: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class VectorStore(Protocol):
    """A collection-oriented vector store: points are (id, vector, payload).

    Guarantees: an id is one point per collection (upsert replaces vector and payload);
    vectors whose dimension or embedder fingerprint differ from the collection's are
    refused (``DimensionMismatch``/``FingerprintMismatch``); an alias never points at an
    alias and is repointed atomically.
    """

    def create_collection(
        self,
        name: str,
        dim: int,
        *,
        fingerprint: str,
        metric: Metric = "cosine",
        dtype: StorageDType = "float32",
        model: str = "",
        index_params: Mapping[str, Any] | None = None,
        payload_indexes: Sequence[str] = (),
    ) -> CollectionInfo:
        """Create an empty collection. Raises ``CollectionExists`` or ``AliasConflict``."""
        ...

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its points. Raises ``AliasConflict`` while aliased."""
        ...

    def list_collections(self) -> list[CollectionInfo]:
        """All collections, sorted by name."""
        ...

    def get_collection(self, name: str) -> CollectionInfo:
        """Describe a collection (or the collection an alias points at)."""
        ...

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
        *,
        fingerprint: str,
    ) -> int:
        """Insert or replace points atomically (all or none); returns the number written.
        ``fingerprint`` must be the collection's (``EXTERNAL_FINGERPRINT`` for a
        collection of external vectors): anything else raises ``FingerprintMismatch``."""
        ...

    def delete(
        self, collection: str, ids: Sequence[str] | None = None, filter: Filter | None = None
    ) -> int:
        """Delete points by ids and/or filter; returns how many were removed."""
        ...

    def update_payload(
        self,
        collection: str,
        patch: Mapping[str, Any],
        ids: Sequence[str] | None = None,
        filter: Filter | None = None,
    ) -> int:
        """Merge ``patch`` into payloads (RFC 7396: ``None`` removes a key); vectors untouched."""
        ...

    def get(self, collection: str, ids: Sequence[str], with_vectors: bool = False) -> list[Point]:
        """The points that exist among ``ids``, in the order asked."""
        ...

    def count(self, collection: str, filter: Filter | None = None) -> int:
        """Number of points, optionally only those matching ``filter``."""
        ...

    def search(
        self,
        collection: str,
        vectors: np.ndarray,
        k: int = DEFAULT_K,
        filter: Filter | None = None,
        ef: int | None = None,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query row (a 1-D vector is one query), best first."""
        ...

    def scan(
        self, collection: str, page_size: int = 1000, filter: Filter | None = None,
        with_vectors: bool = False,
    ) -> Iterator[list[Point]]:
        """Every point (matching ``filter``), in pages of at most ``page_size``."""
        ...

    def stats(self, collection: str) -> dict[str, Any]:
        """Points, deleted (index tombstones), index_bytes (resident), disk_bytes, dtype, seqs."""
        ...

    def create_alias(self, alias: str, collection: str) -> None:
        """Point a new alias at a collection. Raises ``AliasConflict`` on clashes."""
        ...

    def repoint_alias(self, alias: str, collection: str) -> str:
        """Atomically point an existing alias elsewhere; returns the previous target."""
        ...

    def resolve(self, name: str) -> str:
        """The collection a name refers to (a collection name resolves to itself)."""
        ...

    def list_aliases(self) -> dict[str, str]:
        """Alias -> collection."""
        ...

    def delete_alias(self, alias: str) -> None:
        """Remove an alias. Raises ``AliasNotFound``."""
        ...

    def close(self) -> None:
        """Flush derived state and release resources and locks."""
        ...


def external_fingerprint(store: VectorStore, collection: str) -> str:
    """The fingerprint raw vectors without one are written with: the collection's own
    when it holds external vectors. A collection bound to a model has none to offer
    (``FingerprintMismatch``): its vectors must name the model's fingerprint."""
    from embedops.errors import FingerprintMismatch

    info = store.get_collection(collection)
    if info.model != EXTERNAL_MODEL:
        raise FingerprintMismatch(
            f"collection {info.name!r} holds vectors of {info.model} (fingerprint "
            f"{info.fingerprint}): raw vectors must carry that fingerprint")
    return info.fingerprint


@runtime_checkable
class IndexMaintenance(Protocol):
    """An optional capability: a store whose ANN index is derived data it maintains
    itself (the embedded store). Callers check ``isinstance(store, IndexMaintenance)``."""

    def rebuild_index(self, collection: str) -> dict[str, Any]:
        """Regenerate the index from the source of truth."""
        ...

    def verify_index(self, collection: str) -> dict[str, Any]:
        """Compare the index with the source of truth."""
        ...


@runtime_checkable
class RenameBehindAlias(Protocol):
    """An optional capability: turn a collection name into an alias of the same
    collection under a new name, atomically (a migration of a collection that clients
    address by its name needs it)."""

    def rename_behind_alias(self, name: str, new_name: str) -> None:
        ...


@runtime_checkable
class WriteBackPressure(Protocol):
    """An optional capability: a store that makes a writer wait when its writes outrun
    the index (the embedded store's pending segment). A caller that serialises writes
    under a lock of its own opens ``room_waits_deferred`` around that lock, so the wait
    happens after the lock is released and other writers do not queue behind it."""

    def room_waits_deferred(self) -> AbstractContextManager[None]:
        ...


def room_waits_deferred(store: VectorStore) -> AbstractContextManager[None]:
    """``store.room_waits_deferred()`` where the store has back-pressure (a no-op block
    for one that does not)."""
    if isinstance(store, WriteBackPressure):
        return store.room_waits_deferred()
    return nullcontext()


def still_named(store: VectorStore, name: str, started: CollectionInfo
                ) -> CollectionInfo | None:
    """The collection ``name`` names now, when it is still ``started`` (the same name
    and creation time); None when it is gone, was dropped and made again, or ``name``
    now names another one (renamed behind an alias, an alias moved). A writer that
    lets go of its lock between steps checks this under the lock before each."""
    try:
        now = store.get_collection(name)
    except CollectionNotFound:
        return None
    return now if (now.name, now.created_at) == (started.name, started.created_at) else None
