"""Collections and aliases: list, create, describe, delete; alias list, create, repoint.

Reads need the ``read`` scope, changes the ``admin`` scope.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from embedops.errors import InputRejected, InvalidFilter
from embedops.server.dependencies import ADMIN, READ, ServiceDep
from embedops.server.service import Service
from embedops.store.catalog import (
    DEFAULT_SEGMENT_SIZE,
    InvalidIndexParams,
    check_index_params,
    index_param_ranges,
)
from embedops.store.filters import json_path
from embedops.store.names import NAME_PATTERN as NAME
from embedops.store.protocol import CollectionInfo

router = APIRouter(tags=["collections"])


class CollectionCreate(BaseModel):
    """A new collection. With ``model`` only, its dimension and fingerprint come from the
    model; for vectors embedded elsewhere give ``dim`` and ``fingerprint``."""

    name: str = Field(..., pattern=NAME)
    model: str | None = Field(None, max_length=200)
    dim: int | None = Field(None, ge=1, le=65536)
    fingerprint: str | None = Field(None, min_length=1, max_length=200)
    metric: Literal["cosine", "ip", "l2"] = "cosine"
    dtype: Literal["float32", "float16", "int8"] = "float32"
    index_params: dict[str, int] | None = Field(
        None, description="HNSW and search parameters, each an integer in its range: "
        + index_param_ranges() + f"; `segment_size` is {DEFAULT_SEGMENT_SIZE} unless set")
    payload_indexes: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("index_params")
    @classmethod
    def _known_params(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        try:
            return check_index_params(value) if value is not None else None
        except InvalidIndexParams as exc:
            raise ValueError(exc.message) from exc

    @field_validator("payload_indexes")
    @classmethod
    def _field_names(cls, value: list[str]) -> list[str]:
        for field in value:
            try:
                json_path(field)
            except InvalidFilter as exc:
                raise ValueError(exc.message) from exc
        return value


class AliasBody(BaseModel):
    collection: str = Field(..., pattern=NAME)


class AliasCreate(AliasBody):
    alias: str = Field(..., pattern=NAME)


def describe(service: Service, info: CollectionInfo) -> dict[str, Any]:
    """Model, dimension, dtype, counts and index memory of one collection."""
    stats = service.store.stats(info.name)
    return {"name": info.name, "model": info.model, "fingerprint": info.fingerprint,
            "dim": info.dim, "metric": info.metric, "dtype": info.dtype,
            "points": info.points, "documents": service.ledger.document_count(info.name),
            "index_memory_bytes": stats.get("index_bytes", 0),
            "disk_bytes": stats.get("disk_bytes", 0), "aliases": list(info.aliases),
            "index_params": info.index_params, "created_at": info.created_at}


@router.get("/collections", dependencies=[READ], summary="List collections")
def list_collections(service: ServiceDep) -> dict[str, Any]:
    return {"collections": [describe(service, i) for i in service.store.list_collections()]}


@router.post("/collections", dependencies=[ADMIN], status_code=201,
             summary="Create a collection")
def create_collection(body: CollectionCreate, service: ServiceDep) -> dict[str, Any]:
    """409 when the name exists; 422 when neither a model nor dim+fingerprint is given."""
    model, dim, fingerprint = _identity(service, body)
    with service.write_gate.lock:
        info = service.store.create_collection(
            body.name, dim, fingerprint=fingerprint, metric=body.metric, dtype=body.dtype,
            model=model, index_params=body.index_params,
            payload_indexes=body.payload_indexes)
    return describe(service, info)


def _identity(service: Service, body: CollectionCreate) -> tuple[str, int, str]:
    if body.dim is not None and body.fingerprint is not None:
        return body.model or "external", body.dim, body.fingerprint
    if body.dim is not None or body.fingerprint is not None:
        raise InputRejected("collection", "give both dim and fingerprint, or neither")
    assert service.pool is not None
    name = body.model or service.settings.model
    served = service.served.embedder if service.served else None
    if served is not None and name in (served.info.name, service.settings.model):
        return served.info.name, served.info.dim, served.info.fingerprint
    from embedops.embedders import load_embedder

    s = service.settings
    info = load_embedder(name, s.cache_dir, s.backend, s.batch_size, settings=s).info
    return info.name, info.dim, info.fingerprint


@router.get("/collections/{collection}", dependencies=[READ], summary="Describe")
def get_collection(collection: str, service: ServiceDep) -> dict[str, Any]:
    """The collection (or an alias's target); 404 when unknown."""
    return describe(service, service.store.get_collection(collection))


@router.delete("/collections/{collection}", dependencies=[ADMIN], summary="Delete")
def delete_collection(collection: str, service: ServiceDep) -> dict[str, Any]:
    """Drop a collection, its points and its ledger records; 409 while an alias targets
    it."""
    with service.write_gate.lock:
        service.store.drop_collection(collection)
        service.ledger.drop_collection(collection)
    return {"deleted": collection}


@router.get("/aliases", dependencies=[READ], summary="List aliases")
def list_aliases(service: ServiceDep) -> dict[str, Any]:
    return {"aliases": service.store.list_aliases()}


@router.post("/aliases", dependencies=[ADMIN], status_code=201, summary="Create an alias")
async def create_alias(body: AliasCreate, service: ServiceDep) -> dict[str, Any]:
    """409 when the alias exists or clashes with a collection name."""
    await run_in_threadpool(service.store.create_alias, body.alias, body.collection)
    return {"alias": body.alias, "collection": body.collection}


@router.put("/aliases/{alias}", dependencies=[ADMIN], summary="Repoint an alias")
async def repoint_alias(alias: str, body: AliasBody, service: ServiceDep) -> dict[str, Any]:
    """Atomically point an existing alias at another collection (readers see the old or
    the new target, never neither); 404 for an unknown alias."""
    previous = await run_in_threadpool(service.store.repoint_alias, alias, body.collection)
    return {"alias": alias, "collection": body.collection, "previous": previous}


@router.delete("/aliases/{alias}", dependencies=[ADMIN], summary="Delete an alias")
def delete_alias(alias: str, service: ServiceDep) -> dict[str, Any]:
    service.store.delete_alias(alias)
    return {"deleted": alias}
