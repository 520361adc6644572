"""What the server-backed adapters (``milvus.py``, ``pgvector.py``) share.

A remote engine keeps the points; the adapter keeps the contract: the same collection
spec checks, the same batch validation (fingerprint, dimension, finite values, cosine
rows normalised exactly as the embedded store does), RFC 7396 payload patches, and the
record of everything a collection was built with, stored beside it in the engine as one
JSON document (:class:`Spec`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embedops.errors import StoreError
from embedops.store import quantization
from embedops.store.batch import check_batch, check_dim, payload_text
from embedops.store.catalog import now
from embedops.store.embedded import _check_collection_args, check_fingerprint
from embedops.store.filters import json_path
from embedops.store.names import check_name
from embedops.store.protocol import CollectionInfo

# Defaults of the index parameters (the embedded store's): HNSW degree and beam widths,
# and the int8 rescoring factor. A remote adapter maps them onto its engine's names.
DEFAULT_PARAMS: dict[str, int] = {"connectivity": 16, "expansion_add": 128,
                                  "expansion_search": 64, "oversample": 4}


class NotSupported(StoreError):
    """The engine behind this store cannot do what was asked (a client error: 501)."""

    status_code = 501
    code = "not_supported"


@dataclass(frozen=True)
class Spec:
    """Everything a collection was built with; stored as JSON beside it in the engine."""

    name: str
    dim: int
    metric: str
    dtype: str
    fingerprint: str
    model: str
    index_params: dict[str, Any]
    payload_indexes: tuple[str, ...]
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self, key: str) -> int:
        """An index parameter as given at creation, else its default."""
        return int(self.index_params.get(key, DEFAULT_PARAMS[key]))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "payload_indexes": list(self.payload_indexes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str) -> Spec:
        """The spec recorded as ``data``, under the name the engine knows it by now."""
        return cls(**{**data, "name": name,
                      "payload_indexes": tuple(data.get("payload_indexes", ()))})

    def info(self, points: int, aliases: Sequence[str] = (), seq: int = 0) -> CollectionInfo:
        return CollectionInfo(
            name=self.name, dim=self.dim, metric=self.metric, dtype=self.dtype,
            fingerprint=self.fingerprint, model=self.model,
            index_params=dict(self.index_params), payload_indexes=self.payload_indexes,
            created_at=self.created_at, points=points, seq=seq, aliases=tuple(sorted(aliases)))


def new_spec(name: str, dim: int, fingerprint: str, metric: str, dtype: str, model: str,
             index_params: Mapping[str, Any] | None, payload_indexes: Sequence[str],
             **extra: Any) -> Spec:
    """A validated spec for a new collection: the embedded store's rules (name, dim,
    metric, dtype, fingerprint, index parameters, payload field names)."""
    check_name(name)
    params = dict(index_params or {})
    _check_collection_args(dim, metric, dtype, fingerprint, params)
    fields = tuple(dict.fromkeys(payload_indexes))
    for name_ in fields:
        json_path(name_)
    return Spec(name, int(dim), metric, dtype, fingerprint, model, params, fields, now(),
                dict(extra))


def check_k(k: object) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise StoreError(f"k must be a positive integer, got {k!r}")
    return k


def prepare_queries(spec: Spec, vectors: np.ndarray) -> np.ndarray:
    """Query rows as float32 (unit rows for cosine); refuses a wrong dimension."""
    queries = quantization.prepare(vectors, spec.dim, spec.metric)
    check_dim(spec.name, spec.dim, queries)
    return queries


def payload_dict(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON round trip of a payload: what the engine will store and give back."""
    return json.loads(payload_text(payload))


def prepare_batch(spec: Spec, ids: Sequence[str], vectors: np.ndarray,
                  payloads: Sequence[Mapping[str, Any]] | None, fingerprint: str,
                  max_id_length: int | None = None
                  ) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """Validate an upsert the way the embedded store does (``batch.check_batch``);
    duplicate ids keep their last occurrence. float16 collections get their values
    rounded to float16 (what a float16 collection holds), and values beyond the float16
    range are refused."""
    check_fingerprint(spec.name, spec.model, spec.fingerprint, fingerprint)
    arr, payloads, keep = check_batch(spec.name, spec.dim, spec.metric, ids, vectors,
                                      payloads, max_id_length)
    if spec.dtype == "float16":
        arr = quantization.decode(quantization.encode(arr, "float16"), spec.dim, "float16")
    return ([ids[i] for i in keep], np.ascontiguousarray(arr[keep], dtype=np.float32),
            [payload_dict(payloads[i]) for i in keep])


def check_patch(patch: object) -> dict[str, Any]:
    if not isinstance(patch, Mapping):
        raise StoreError("a payload patch is a JSON object")
    return payload_dict(patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``None`` removes a key,
    anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def selection_required(ids: Sequence[str] | None, filter: object) -> None:
    if ids is None and filter is None:
        raise StoreError("pass ids, a filter, or both to select the points to change")
