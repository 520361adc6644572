"""``POST /collections/{c}/search``: by ``query`` text (embedded with the collection's own
model, batched with concurrent queries) or by ``vector``. Aliases resolve to their
current collection inside the store's read, so a repoint never fails a search."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from embedops.errors import InputRejected
from embedops.server.dependencies import READ, ServiceDep
from embedops.store.protocol import Hit

router = APIRouter(tags=["search"])


class SearchBody(BaseModel):
    query: str | None = Field(None, min_length=1, max_length=10000)
    vector: list[float] | None = Field(None, min_length=1, max_length=65536)
    k: int = Field(10, ge=1)
    filter: dict[str, Any] | str | None = Field(
        None, description="Payload filter (dict or string form; see docs/store.md).")
    exact: bool = False

    @model_validator(mode="after")
    def _one_query(self) -> SearchBody:
        if (self.query is None) == (self.vector is None):
            raise ValueError("give exactly one of `query` and `vector`")
        if self.query is not None and not self.query.strip():
            raise ValueError("`query` is blank")
        return self


@router.post("/collections/{collection}/search", dependencies=[READ],
             summary="Search a collection or alias")
async def search(collection: str, body: SearchBody, service: ServiceDep) -> dict[str, Any]:
    """Top-``k`` hits, best first: ``id``, ``doc_id``, ``score``, ``text``, ``payload``."""
    if body.k > service.settings.server_max_k:
        raise InputRejected("k", f"k={body.k}; at most {service.settings.server_max_k}")
    info = await run_in_threadpool(service.store.get_collection, collection)
    if body.vector is not None:
        vector = np.asarray(body.vector, dtype=np.float32)
        service.metrics.searches.labels("vector").inc()
    else:
        vectors, _ = await service.batcher_for(info).embed([str(body.query)])
        vector = vectors[0]
        service.metrics.searches.labels("text").inc()
    if not np.all(np.isfinite(vector)):
        raise InputRejected("vector", "the vector must hold finite numbers")
    hits = await run_in_threadpool(service.store.search, info.name, vector, body.k,
                                   body.filter, None, body.exact)
    return {"collection": info.name, "hits": [_hit(h) for h in hits[0]]}


def _hit(hit: Hit) -> dict[str, Any]:
    payload = {k: v for k, v in hit.payload.items() if k != "text"}
    return {"id": hit.id, "doc_id": hit.payload.get("doc_id", hit.id.rsplit("#", 1)[0]),
            "score": round(float(hit.score), 6), "text": hit.payload.get("text"),
            "payload": payload}
