"""``/admin/migrations``: the ``embedops migrate`` steps over HTTP (admin scope). Every
step runs on the service's migration thread, one at a time; backfills run there in the
background between steps."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from embedops.server.dependencies import ADMIN, ServiceDep

router = APIRouter(prefix="/admin/migrations", tags=["migrations"], dependencies=[ADMIN])


class PlanBody(BaseModel):
    to: str = Field(..., min_length=1, max_length=200, description="The model to migrate to.")
    dtype: str | None = Field(None, pattern="^(float32|float16|int8)$")
    max_rate: float | None = Field(None, gt=0, description="Backfill limit, chunks/s.")


class EvaluateBody(BaseModel):
    dataset: str = Field(..., min_length=1, max_length=4096,
                         description="A BEIR directory on the server, or a shipped name.")
    split: str = Field("test", min_length=1, max_length=64)


class SwapBody(BaseModel):
    force: bool = Field(False, description="Swap although the gate did not pass.")


async def _step(service: Any, alias: str, action: str, args: dict[str, Any]) -> Any:
    future = service.migrations().submit(alias, action, args)
    return await asyncio.wrap_future(future)


@router.get("", summary="All migrations and their phases")
async def list_migrations(service: ServiceDep) -> dict[str, Any]:
    runner = service.migrations()
    return {"migrations": await asyncio.to_thread(runner.migrations.list)}


@router.get("/{alias}", summary="Status of an alias's migration")
async def migration_status(alias: str, service: ServiceDep) -> Any:
    return await _step(service, alias, "status", {})


@router.post("/{alias}/plan", summary="What a migration would create and cost")
async def plan(alias: str, body: PlanBody, service: ServiceDep) -> Any:
    return await _step(service, alias, "plan", body.model_dump())


@router.post("/{alias}/start", summary="Create the shadow; dual-write on; backfill")
async def start(alias: str, body: PlanBody, service: ServiceDep) -> Any:
    return await _step(service, alias, "start", body.model_dump())


@router.post("/{alias}/evaluate", summary="Live vs shadow on labelled queries; the gate")
async def evaluate(alias: str, body: EvaluateBody, service: ServiceDep) -> Any:
    return await _step(service, alias, "evaluate", body.model_dump())


@router.post("/{alias}/swap", summary="Point the alias at the shadow atomically")
async def swap(alias: str, body: SwapBody, service: ServiceDep) -> Any:
    return await _step(service, alias, "swap", body.model_dump())


def _simple(action: str, summary: str) -> None:
    async def handler(alias: str, service: ServiceDep) -> Any:
        return await _step(service, alias, action, {})

    handler.__name__ = action
    router.post(f"/{{alias}}/{action}", summary=summary)(handler)


class ResumeBody(BaseModel):
    max_rate: float | None = Field(None, gt=0, description="A new backfill speed limit.")


@router.post("/{alias}/resume", summary="Continue the backfill")
async def resume(alias: str, service: ServiceDep, body: ResumeBody | None = None) -> Any:
    return await _step(service, alias, "resume", (body or ResumeBody()).model_dump())


_simple("pause", "Stop the backfill after its current batch")
_simple("rollback", "Point the alias back at the previous collection")
_simple("finalize", "Drop the old collection; end dual-write")
