"""``/collections/{c}/schema``: declared payload fields over HTTP (see docs/freshness.md).
Declaring a field with a default backfills the points that lack it (payload updates
only), in the background unless ``?wait=true``; later writes get the default, and a
wrong type is a 422."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from embedops.freshness.fields import add_field
from embedops.payload_schema import FieldSpec
from embedops.server.dependencies import ADMIN, READ, ServiceDep

router = APIRouter(tags=["schema"])


class FieldBody(BaseModel):
    field: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    type: str = Field(..., description="str, int, float, bool or list")
    default: Any = Field(None, description="Set on every point that lacks the field.")
    indexed: bool = False


@router.get("/collections/{collection}/schema", dependencies=[READ],
            summary="Declared payload fields and their backfills")
def show_schema(collection: str, service: ServiceDep) -> dict[str, Any]:
    name = service.store.get_collection(collection).name
    return {"collection": name,
            "fields": [f.to_dict() for f in service.ledger.payload_fields(name)],
            "backfills": service.ledger.backfills(name)}


@router.post("/collections/{collection}/schema/fields", dependencies=[ADMIN],
             summary="Declare a payload field (and backfill its default)",
             responses={202: {"description": "Declared; the default is being backfilled"}})
async def declare_field(collection: str, body: FieldBody, service: ServiceDep,
                        response: Response,
                        wait: bool = Query(False, description=(
                            "Backfill before answering (200) instead of in the "
                            "background (202; progress in GET …/schema and `status`)."))
                        ) -> dict[str, Any]:
    spec = FieldSpec(body.field, body.type, body.default, body.indexed)

    def apply() -> dict[str, Any]:
        service.open()
        backfills = service.backfills
        start = None if wait or backfills is None else backfills.submit
        return add_field(service.store, service.ledger, collection, spec, start=start,
                         lock=service.write_gate.lock)

    result = await run_in_threadpool(apply)
    if result.get("backfill", {}).get("state") == "running":
        response.status_code = 202
    return result
