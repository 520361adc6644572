"""The Milvus adapter: a ``VectorStore`` in Milvus (a server or cluster) or milvus-lite.

``milvus://host:19530/db`` (``milvus://user:password@host:19530/db``, ``?secure=true``
for TLS) talks to a Milvus server; ``milvus-lite:///path/file.db`` runs milvus-lite in
this process with its data in that path. The mapping:

- an embedops collection is a Milvus collection named ``eo_<name>`` (embedops names may
  hold ``.`` and ``-``, which Milvus refuses: they are escaped, see :func:`engine_name`)
  with fields ``id`` (VARCHAR primary key: the point id), ``vector`` (FLOAT_VECTOR) and
  ``payload`` (JSON); consistency level Strong, so a handle reads its own writes. The
  collection spec (fingerprint, model, dtype, index parameters, ...) is its description.
- an alias is a Milvus alias: ``repoint_alias`` is ``alter_alias``, atomic in Milvus.
- ``float32``: an HNSW index (``M`` = connectivity, ``efConstruction`` = expansion_add,
  ``ef`` = expansion_search). ``int8`` and ``float16``: Milvus' scalar-quantized HNSW
  (``HNSW_SQ``, ``sq_type`` SQ8 / FP16) over float32 rows (float16 collections hold
  float16-rounded values); searches fetch ``oversample × k`` candidates with their
  vectors and rescore them exactly, as the embedded store does.
- filters compile to Milvus boolean expressions over ``payload`` (``milvus_filters``);
  ``update_payload`` merges in the client and writes with Milvus' partial upsert (the
  vector is not rewritten; Milvus ≥ 2.6).

What Milvus does not offer is reported, not imitated: ``stats()`` has no tombstone count
or index memory (``None``); declared payload fields are recorded in the spec, but
``CollectionInfo.payload_indexes`` lists none (filters read the JSON field), and
``create_payload_index`` raises ``NotSupported``; there is no ``rename_behind_alias`` or
index maintenance; ``exact=True``
scores every matching point in the client (it reads all their vectors).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

import numpy as np

from embedops.errors import (
    AliasConflict,
    AliasNotFound,
    CollectionExists,
    CollectionNotFound,
    InvalidCollectionSpec,
    InvalidFilter,
    StoreError,
)
from embedops.store import remote
from embedops.store.batch import lookup_ids
from embedops.store.guards import writes
from embedops.store.milvus_connect import connect, embedops_name, engine_name, release_lite
from embedops.store.milvus_filters import compile_milvus_filter, literal
from embedops.store.milvus_search import Searcher, index_of
from embedops.store.names import check_name
from embedops.store.protocol import (
    DEFAULT_K,
    CollectionInfo,
    Filter,
    Hit,
    Point,
    check_ef,
)
from embedops.store.remote import Spec

P = ParamSpec("P")
R = TypeVar("R")
SPEC_PROPERTY = "embedops.spec"
MAX_ID_BYTES = 8192
MAX_DIM = 32_768


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Translate pymilvus errors at the boundary."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from pymilvus.exceptions import MilvusException

        store = args[0]
        assert isinstance(store, MilvusStore)
        if store._client is None:
            raise StoreError("store handle is closed")
        try:
            return method(*args, **kwargs)
        except MilvusException as exc:
            if getattr(exc, "code", None) == 101:  # not loaded: load again on next use
                store._loaded.clear()
            raise _translate(exc) from exc

    return wrapper


_writes = writes(_guarded)


def _translate(exc: Exception) -> StoreError:
    text = str(getattr(exc, "message", "") or exc)
    if "not exist" in text or "not found" in text:
        return CollectionNotFound(f"milvus: {text}")
    if "filter" in text.lower() or "expr" in text.lower() or "parse" in text.lower():
        return InvalidFilter(f"milvus could not run the filter: {text}")
    return StoreError(f"milvus error: {text}")


class MilvusStore:
    """A ``VectorStore`` in one Milvus database; see the module docstring."""

    def __init__(self, location: str, read_only: bool = False) -> None:
        self.read_only = read_only
        self._client: Any | None = None
        self._loaded: set[str] = set()
        self._seen: set[str] = set()  # names described by this handle
        self._client, self._lite_path, self.where = connect(location, read_only)
        self._searcher = Searcher(self.client, self._count, self._pages)

    @property
    def client(self) -> Any:
        assert self._client is not None
        return self._client

    # --- catalog -------------------------------------------------------------------------

    def _describe(self, name: str) -> Spec:
        """The spec of the collection ``name`` refers to (an alias is resolved by
        Milvus in the same call)."""
        check_name(name)
        desc = self._description(name)
        if desc is None:
            raise CollectionNotFound(f"no collection or alias named {name!r}")
        spec = _spec_of(desc)
        self._ensure_loaded(desc["collection_name"])
        return spec

    def _ensure_loaded(self, engine: str) -> None:
        """Load a collection into the engine's memory once per handle (Milvus answers
        only loaded collections; a restarted engine starts with them released)."""
        from pymilvus.client.types import LoadState

        if engine in self._loaded:
            return
        if self.client.get_load_state(engine).get("state") != LoadState.Loaded:
            self.client.load_collection(engine)
        self._loaded.add(engine)

    def _appears(self, engine: str, timeout: float = 5.0) -> bool:
        """Whether the collection exists, or comes to within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.client.has_collection(engine):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _wait_loaded(self, engine: str, timeout: float = 60.0) -> None:
        """Wait until the collection another writer is creating has its index and is
        loaded (creation is three engine calls: create, index, load)."""
        from pymilvus.client.types import LoadState

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get_load_state(engine).get("state") == LoadState.Loaded:
                self._loaded.add(engine)
                return
            time.sleep(0.05)
        raise StoreError(f"collection {engine!r} was created by another writer but not "
                         f"loaded within {timeout:.0f} s")

    def _description(self, name: str) -> dict[str, Any] | None:
        """Milvus' description of the collection ``name`` names (through an alias
        too), None when there is none."""
        from pymilvus.exceptions import MilvusException

        engine = engine_name(name)
        # (asking first spares users pymilvus' error log line for each missing name)
        if engine not in self._seen and not self.client.has_collection(engine):
            return None
        try:
            desc = dict(self.client.describe_collection(engine))
        except MilvusException as exc:
            if "not exist" in str(exc) or "not found" in str(exc):
                self._seen.discard(engine)
                return None
            raise
        self._seen.add(engine)
        return desc

    def _alias_target(self, alias: str) -> str | None:
        """The embedops collection an alias points at, None when it is no alias."""
        if not self.client.has_collection(engine_name(alias)):  # (true for aliases too)
            return None
        desc = self._description(alias)
        if desc is None or desc["collection_name"] == engine_name(alias):
            return None
        return embedops_name(desc["collection_name"])

    def _is_collection(self, name: str) -> bool:
        if not self.client.has_collection(engine_name(name)):
            return False
        desc = self._description(name)
        return desc is not None and desc["collection_name"] == engine_name(name)

    def _count(self, spec: Spec, expr: str = "") -> int:
        rows = self.client.query(engine_name(spec.name), filter=expr,
                                 output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _aliases_of(self, name: str) -> list[str]:
        found = self.client.list_aliases(engine_name(name)).get("aliases", [])
        return sorted(a for a in (embedops_name(x) for x in found) if a is not None)

    def _info(self, spec: Spec) -> CollectionInfo:
        # no payload index is built (filters read the JSON field): none is listed
        return replace(spec.info(self._count(spec), self._aliases_of(spec.name)),
                       payload_indexes=())

    # --- collections ---------------------------------------------------------------------

    @_writes
    def create_collection(self, name: str, dim: int, *, fingerprint: str,
                          metric: str = "cosine", dtype: str = "float32", model: str = "",
                          index_params: Mapping[str, Any] | None = None,
                          payload_indexes: Sequence[str] = ()) -> CollectionInfo:
        """Create the Milvus collection with its index (loaded, ready to search)."""
        from pymilvus import DataType
        from pymilvus.exceptions import MilvusException

        spec = remote.new_spec(name, dim, fingerprint, metric, dtype, model, index_params,
                               payload_indexes)
        if spec.dim > MAX_DIM:
            raise InvalidCollectionSpec(f"Milvus takes vectors of at most {MAX_DIM} "
                                        f"dimensions, got {spec.dim}")
        engine = engine_name(name)
        if self._alias_target(name) is not None:
            raise AliasConflict(f"{name!r} is already an alias; collection names and "
                                "aliases differ")
        if self.client.has_collection(engine):
            raise CollectionExists(f"collection {name!r} already exists")
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False,
                                           description=_spec_json(spec))
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=spec.dim)
        schema.add_field("payload", DataType.JSON)
        index = self.client.prepare_index_params()
        index.add_index("vector", **index_of(spec))
        try:
            self.client.create_collection(engine, schema=schema, consistency_level="Strong",
                                          properties={SPEC_PROPERTY: _spec_json(spec)})
        except MilvusException as exc:
            # another writer created it between the check and the call (the engine says
            # so in words of its own): let it finish and report it like the check would
            if not self._appears(engine):
                raise
            self._wait_loaded(engine)
            raise CollectionExists(f"collection {name!r} already exists") from exc
        # (an empty collection's index is ready at once: no waiting on the build)
        self.client.create_index(engine, index, sync=False)
        self.client.load_collection(engine)
        return self._info(spec)

    @_writes
    def create_payload_index(self, collection: str, field: str) -> None:
        """Refused (``NotSupported``): the adapter builds no payload indexes in Milvus,
        whose JSON path indexes need each field's type; filters read the JSON field."""
        spec = self._describe(collection)
        raise remote.NotSupported(
            f"payload index on {field!r} of {spec.name!r}: this Milvus adapter builds no "
            "payload indexes (filters on the field work, without one)")

    @_writes
    def drop_collection(self, name: str) -> None:
        """Drop a collection; refused while an alias targets it."""
        spec = self._describe(name)
        targets = self._aliases_of(spec.name)
        if targets:
            raise AliasConflict(f"collection {spec.name!r} is the target of alias(es) "
                                f"{targets}: repoint or delete them first")
        self.client.drop_collection(engine_name(spec.name))

    @_guarded
    def list_collections(self) -> list[CollectionInfo]:
        names = sorted(n for n in (embedops_name(e) for e in self.client.list_collections())
                       if n is not None)
        specs = [self._describe(n) for n in names]
        return [self._info(s) for s in specs]

    @_guarded
    def get_collection(self, name: str) -> CollectionInfo:
        return self._info(self._describe(name))

    # --- points --------------------------------------------------------------------------

    @_writes
    def upsert(self, collection: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None, *,
               fingerprint: str) -> int:
        """Insert or replace points with one Milvus upsert request."""
        spec = self._describe(collection)
        ids_, arr, docs = remote.prepare_batch(spec, ids, vectors, payloads, fingerprint,
                                               max_id_length=MAX_ID_BYTES)
        if not ids_:
            return 0
        rows = [{"id": i, "vector": v, "payload": d} for i, v, d in zip(ids_, arr, docs,
                                                                        strict=True)]
        self.client.upsert(engine_name(spec.name), rows)
        return len(ids_)

    def _expr(self, ids: Sequence[str] | None, filter: Filter | None) -> str:
        parts = []
        if ids is not None:
            ids = lookup_ids(ids)
            quoted = ", ".join(literal(i) for i in ids)
            parts.append(f"id in [{quoted}]")
        if filter is not None:
            parts.append(compile_milvus_filter(filter))
        return " and ".join(f"({p})" for p in parts)

    def _pages(self, spec: Spec, expr: str, fields: Sequence[str], size: int
               ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``size`` points matching ``expr`` in id order (keyset pagination:
        ``id > last``, the query flagged as an iterator's so the server merges by id)."""
        last: str | None = None
        while True:
            cond = expr if last is None else f"(id > {literal(last)})" + (
                f" and ({expr})" if expr else "")
            rows = self.client.query(engine_name(spec.name), filter=cond, limit=size,
                                     output_fields=["id", *fields], iterator="True",
                                     reduce_stop_for_best="True")
            if not rows:
                return
            rows = sorted(rows, key=lambda r: r["id"])
            yield rows
            if len(rows) < size:
                return
            last = rows[-1]["id"]

    def _matching(self, spec: Spec, ids: Sequence[str] | None, filter: Filter | None,
                  fields: Sequence[str] = ()) -> Iterator[list[dict[str, Any]]]:
        """Pages of the points matching ``ids`` and ``filter`` (``id`` and ``fields``)."""
        if ids is not None and not ids:
            return
        yield from self._pages(spec, self._expr(ids, filter), fields, 1000)

    @_writes
    def delete(self, collection: str, ids: Sequence[str] | None = None,
               filter: Filter | None = None) -> int:
        """Delete the points matching ``ids`` and ``filter``; returns how many existed
        (the matching ids are read first: Milvus counts the ids it was sent)."""
        remote.selection_required(ids, filter)
        spec = self._describe(collection)
        gone = 0
        for page in list(self._matching(spec, ids, filter)):
            self.client.delete(engine_name(spec.name), ids=[r["id"] for r in page])
            gone += len(page)
        return gone

    @_writes
    def update_payload(self, collection: str, patch: Mapping[str, Any],
                       ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        """Merge ``patch`` into matching payloads (RFC 7396) with partial upserts of the
        payload field; vectors are not rewritten."""
        doc = remote.check_patch(patch)
        remote.selection_required(ids, filter)
        spec = self._describe(collection)
        changed = 0
        for page in list(self._matching(spec, ids, filter, ["payload"])):
            rows = [{"id": r["id"], "payload": remote.merge_patch(r["payload"] or {}, doc)}
                    for r in page]
            self.client.upsert(engine_name(spec.name), rows, partial_update=True)
            changed += len(rows)
        return changed

    @_guarded
    def get(self, collection: str, ids: Sequence[str], with_vectors: bool = False) -> list[Point]:
        """The existing points among ``ids``, in the order asked."""
        spec = self._describe(collection)
        wanted = list(dict.fromkeys(lookup_ids(ids)))
        if not wanted:
            return []
        fields = ["payload", "vector"] if with_vectors else ["payload"]
        rows = self.client.get(engine_name(spec.name), ids=wanted, output_fields=fields)
        found = {r["id"]: r for r in rows}
        return [_point(found[i], with_vectors) for i in wanted if i in found]

    @_guarded
    def count(self, collection: str, filter: Filter | None = None) -> int:
        spec = self._describe(collection)
        return self._count(spec, self._expr(None, filter))

    @_guarded
    def search(self, collection: str, vectors: np.ndarray, k: int = DEFAULT_K,
               filter: Filter | None = None, ef: int | None = None,
               exact: bool = False) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first; see ``milvus_search`` for the plan."""
        remote.check_k(k)
        check_ef(ef)
        spec = self._describe(collection)
        queries = remote.prepare_queries(spec, vectors)
        return self._searcher.search(spec, queries, k, self._expr(None, filter), ef, exact)

    def scan(self, collection: str, page_size: int = 1000, filter: Filter | None = None,
             with_vectors: bool = False) -> Iterator[list[Point]]:
        """Pages of exactly ``page_size`` points (the last may be shorter)."""
        if page_size < 1:
            raise StoreError("page_size must be positive")
        spec = self._guarded_describe(collection)  # an alias must not switch mid-scan
        fields = ["payload", "vector"] if with_vectors else ["payload"]
        for page in self._pages(spec, self._expr(None, filter), fields, page_size):
            yield [_point(r, with_vectors) for r in page]

    @_guarded
    def _guarded_describe(self, name: str) -> Spec:
        return self._describe(name)

    @_guarded
    def stats(self, collection: str) -> dict[str, Any]:
        """Points and the index Milvus built. ``deleted``, ``index_bytes`` and
        ``disk_bytes`` are None: Milvus does not report them per collection."""
        spec = self._describe(collection)
        return {"collection": spec.name, "points": self._count(spec), "deleted": None,
                "index_points": None, "index_bytes": None, "disk_bytes": None,
                "dtype": spec.dtype, "metric": spec.metric, "seq": None, "index_seq": None,
                "checkpoint_seq": None, "engine": "milvus", "index": index_of(spec),
                "payload_indexes_declared": list(spec.payload_indexes),
                "payload_indexes_built": []}

    # --- aliases -------------------------------------------------------------------------

    def _check_target(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        check_name(collection)
        if self._alias_target(collection) is not None:
            raise AliasConflict(f"{collection!r} is an alias; an alias must point at a "
                                "collection")
        if not self._is_collection(collection):
            raise CollectionNotFound(f"no collection named {collection!r}")

    @_writes
    def create_alias(self, alias: str, collection: str) -> None:
        self._check_target(alias, collection)
        if self._alias_target(alias) is not None:
            raise AliasConflict(f"alias {alias!r} already exists; use repoint_alias to "
                                "move it")
        if self._is_collection(alias):
            raise AliasConflict(f"{alias!r} is a collection name and cannot be an alias")
        self.client.create_alias(engine_name(collection), engine_name(alias))

    @_writes
    def repoint_alias(self, alias: str, collection: str) -> str:
        """Move ``alias`` with Milvus' atomic ``alter_alias``; returns the previous target."""
        self._check_target(alias, collection)
        previous = self._alias_target(alias)
        if previous is None:
            raise AliasNotFound(f"no alias named {alias!r}")
        self.client.alter_alias(engine_name(collection), engine_name(alias))
        return previous

    @_guarded
    def resolve(self, name: str) -> str:
        return self._describe(name).name

    @_guarded
    def list_aliases(self) -> dict[str, str]:
        out = {}
        for engine in self.client.list_aliases().get("aliases", []):
            alias = embedops_name(engine)
            target = self._alias_target(alias) if alias is not None else None
            if alias is not None and target is not None:
                out[alias] = target
        return dict(sorted(out.items()))

    @_writes
    def delete_alias(self, alias: str) -> None:
        check_name(alias, "alias")
        if self._alias_target(alias) is None:
            raise AliasNotFound(f"no alias named {alias!r}")
        self.client.drop_alias(engine_name(alias))

    def close(self) -> None:
        """Close the connection; the last handle on a milvus-lite path stops its engine."""
        client, self._client = self._client, None
        if client is None:
            return
        client.close()
        if self._lite_path is not None:
            release_lite(self._lite_path)

    def __enter__(self) -> MilvusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spec_json(spec: Spec) -> str:
    return json.dumps({"embedops": 1, **spec.to_dict()}, sort_keys=True)


def _spec_of(desc: Mapping[str, Any]) -> Spec:
    """The spec recorded in a collection's properties (or, where an engine keeps no
    properties, its description)."""
    name = embedops_name(desc["collection_name"])
    text = (desc.get("properties") or {}).get(SPEC_PROPERTY) or desc.get("description")
    try:
        data = json.loads(text or "")
    except ValueError:
        data = None
    if name is None or not isinstance(data, dict) or data.pop("embedops", None) != 1:
        raise CollectionNotFound(f"{desc['collection_name']!r} is not an embedops collection")
    return Spec.from_dict(data, name)


def _point(row: Mapping[str, Any], with_vectors: bool) -> Point:
    vector = np.asarray(row["vector"], dtype=np.float32) if with_vectors else None
    return Point(id=row["id"], payload=dict(row.get("payload") or {}), vector=vector)
