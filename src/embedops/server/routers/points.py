"""``POST /collections/{c}/points``: upsert vectors embedded elsewhere. The collection
must exist; its dimension and fingerprint rules apply (422 on mismatch): a collection of
external vectors takes them as they are, a collection bound to a model only with that
model's fingerprint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from embedops.errors import InputRejected
from embedops.server.dependencies import WRITE, ServiceDep
from embedops.server.vectors import float32_rows
from embedops.store.protocol import external_fingerprint, room_waits_deferred

router = APIRouter(tags=["points"])


class PointIn(BaseModel):
    id: str = Field(..., min_length=1, max_length=512)
    vector: list[float] = Field(..., min_length=1, max_length=65536)
    payload: dict[str, Any] = Field(default_factory=dict)


class PointsBody(BaseModel):
    points: list[PointIn] = Field(..., min_length=1)
    fingerprint: str | None = Field(
        None, description="The embedder fingerprint of the vectors. Leave it out for a "
        "collection of external vectors; a collection bound to a model takes only vectors "
        "of that model's fingerprint.")


@router.post("/collections/{collection}/points", dependencies=[WRITE],
             summary="Upsert precomputed vectors")
def upsert_points(collection: str, body: PointsBody, service: ServiceDep) -> dict[str, Any]:
    """Insert or replace points atomically (all or none)."""
    limit = service.settings.server_max_points
    if len(body.points) > limit:
        raise InputRejected("too_many", f"{len(body.points)} points; at most {limit}")
    dims = {len(p.vector) for p in body.points}
    if len(dims) != 1:
        raise InputRejected("vector", f"vectors of different lengths {sorted(dims)}")
    vectors = float32_rows([p.vector for p in body.points])
    ids = [p.id for p in body.points]
    if len(set(ids)) != len(ids):
        raise InputRejected("duplicate_id", "each point id may appear once per request")
    # (a write that fills the index's pending segment waits for room after the gate)
    with room_waits_deferred(service.store), service.write_gate.lock:
        fingerprint = body.fingerprint or external_fingerprint(service.store, collection)
        written = service.store.upsert(collection, ids, vectors,
                                       [p.payload for p in body.points],
                                       fingerprint=fingerprint)
    return {"collection": service.store.resolve(collection), "upserted": written}
