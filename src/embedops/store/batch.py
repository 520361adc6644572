"""The checks of a batch of points that every store makes before it writes one.

The embedded store and the remote adapters (``remote.py``) refuse the same batches
with the same errors: vectors of another dimension, non-finite values, ids, vectors and
payloads that do not line up, ids that are not non-empty strings of text (``check_ids``),
payloads that are not JSON objects. Duplicate ids keep their last occurrence (one point
per id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from embedops.errors import DimensionMismatch, InvalidVector
from embedops.store import quantization


def check_dim(collection: str, dim: int, arr: np.ndarray) -> None:
    """Refuse rows whose dimension is not the collection's ``dim``."""
    if arr.shape[1] != dim:
        raise DimensionMismatch(
            f"collection {collection!r} has dimension {dim}, got vectors of dimension "
            f"{arr.shape[1]}")


def check_ids(ids: Sequence[object], lookup: bool = False) -> None:
    """Refuse ids that are not non-empty strings of text every store can hold: no NUL
    character (SQLite's JSON functions end a string there, so ``"a\\x00b"`` would name the
    point ``"a"``; PostgreSQL refuses it) and no lone surrogate (it has no UTF-8 form).
    With ``lookup`` (ids that only select points: ``get``, ``delete``), an empty id
    passes: it selects nothing."""
    for i in ids:
        if not isinstance(i, str) or not (i or lookup):
            raise InvalidVector("point ids must be non-empty strings")
        if "\x00" in i:
            raise InvalidVector(f"point id {i!r} contains a NUL character")
        if not i.isascii():
            try:
                i.encode()
            except UnicodeEncodeError as exc:
                raise InvalidVector(f"point id {i!r} is not valid Unicode text: {exc}"
                                    ) from exc


def lookup_ids(ids: Iterable[object]) -> list[str]:
    """Ids that select points (``get``, ``delete``, ``update_payload``) as strings,
    refused as ``check_ids`` refuses them (an empty one passes: it selects nothing)."""
    selected = [str(i) for i in ids]
    check_ids(selected, lookup=True)
    return selected


# ``json.dumps`` with arguments of its own makes a new encoder per call: a third of the
# 3 ms that 1,000 small payloads took.
_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def payload_text(payload: Mapping[str, Any]) -> str:
    """A payload as JSON text; refuses one that JSON cannot hold (NaN, sets, ...) and
    strings with no UTF-8 form (lone surrogates)."""
    try:
        text = _PAYLOAD_JSON.encode(payload if type(payload) is dict else dict(payload))
        if not text.isascii():
            text.encode()
        return text
    except UnicodeEncodeError as exc:
        raise InvalidVector(f"payload is not valid Unicode text: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"payload is not JSON-serialisable: {exc}") from exc


def check_batch(collection: str, dim: int, metric: str, ids: Sequence[str],
                vectors: np.ndarray, payloads: Sequence[Mapping[str, Any]] | None,
                max_id_length: int | None = None
                ) -> tuple[np.ndarray, Sequence[Mapping[str, Any]], list[int]]:
    """``(rows, payloads, keep)`` of a valid batch: the rows as float32 (unit rows for
    cosine), the payloads (``{}`` each when None) and the positions to write, the last
    of each id, in order. ``max_id_length`` is a limit of the engine, in UTF-8 bytes."""
    arr = quantization.prepare(vectors, dim, metric)
    check_dim(collection, dim, arr)
    payloads = payloads if payloads is not None else [{} for _ in ids]
    if not len(ids) == len(arr) == len(payloads):
        raise InvalidVector(f"got {len(ids)} ids, {len(arr)} vectors and {len(payloads)} "
                            "payloads; they must line up")
    check_ids(ids)
    if max_id_length is not None and any(len(i.encode()) > max_id_length for i in ids):
        raise InvalidVector(f"point ids longer than {max_id_length} bytes do not fit this "
                            "store")
    if not all(type(p) is dict or isinstance(p, Mapping) for p in payloads):
        raise InvalidVector("payloads must be JSON objects (dicts)")
    last = {pid: pos for pos, pid in enumerate(ids)}
    return arr, payloads, sorted(last.values())
