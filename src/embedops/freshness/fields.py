"""Metadata schema drift: declare a payload field and backfill it on the points that lack
it, through payload updates only (no embedding call)."""

from __future__ import annotations

from typing import Any

from embedops.ledger import Ledger
from embedops.payload_schema import FieldSpec, check_value
from embedops.store.filters import parse_filter
from embedops.store.protocol import Filter, VectorStore


def backfill_field(store: VectorStore, ledger: Ledger | None, collection: str, field: str,
                   default: Any, where: Filter | None = None) -> dict[str, Any]:
    """Set ``field`` to ``default`` on every point of ``collection`` that lacks it (and
    matches ``where``). A declared field's type is checked first. Vectors untouched."""
    info = store.get_collection(collection)
    declared = {s.field: s for s in ledger.payload_fields(info.name)} if ledger else {}
    if field in declared:
        check_value(declared[field], default)
    missing: dict[str, Any] = {"field": field, "exists": False}
    scope = missing if where is None else {"and": [missing, parse_filter(where)]}
    updated = store.update_payload(info.name, {field: default}, filter=scope)
    return {"collection": info.name, "field": field, "default": default,
            "points_updated": updated, "embedding_calls": 0}


def add_field(store: VectorStore, ledger: Ledger, collection: str,
              spec: FieldSpec) -> dict[str, Any]:
    """Declare ``spec`` on ``collection``; with a default, backfill the points that lack
    the field; with ``indexed``, create a payload index on it."""
    info = store.get_collection(collection)
    ledger.declare_field(info.name, spec)
    result: dict[str, Any] = {"collection": info.name, **spec.to_dict(),
                              "points_updated": 0, "embedding_calls": 0}
    if spec.indexed:
        create_index = getattr(store, "create_payload_index", None)
        if create_index is not None:
            create_index(info.name, spec.field)
    if spec.default is not None:
        result.update(backfill_field(store, ledger, info.name, spec.field, spec.default))
    return result
