"""``/ui/api``: the JSON the dashboard (``/ui``) reads. Viewing needs the read scope;
the dead-letter actions need admin. Migration actions go to ``/admin/migrations``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from embedops.errors import EmbedOpsError
from embedops.ledger.keys import ApiKey
from embedops.ledger.migrations import ACTIVE_PHASES
from embedops.migrate import Migrations
from embedops.monitor.alerts import active_alerts
from embedops.monitor.memory import WARN_SHARE, memory_state
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.quality.canary import canary_history
from embedops.server import dead_letters
from embedops.server.dependencies import ADMIN, READ, ServiceDep
from embedops.server.errors import ErrorResponse
from embedops.server.service import _index_estimate
from embedops.server.thumbnails import thumbnail
from embedops.server.timeseries import ledger_series, metric_samples

router = APIRouter(prefix="/ui/api", tags=["dashboard"])
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


class Session(BaseModel):
    auth_required: bool = Field(description="False when no API key exists: all is open.")
    key_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
    collections: list[str] | None = Field(None, description="A per-collection key's list.")


class CollectionRow(BaseModel):
    name: str
    points: int
    documents: int
    model: str
    dim: int
    dtype: str
    index_bytes: int
    aliases: list[str]


class Memory(BaseModel):
    index_bytes: int
    budget_bytes: int
    budget_source: str
    share: float
    warn_share: float = Field(description="Past this share of the budget: a warning.")


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    alert: str
    level: str
    reason: str


class Overview(BaseModel):
    collections: list[CollectionRow]
    aliases: dict[str, str] = Field(description="Alias -> collection.")
    memory: Memory
    queue_depth: int
    indexing_lag_s: float
    breakers: dict[str, str] = Field(description="API endpoint -> closed, half-open, open.")
    alerts: list[Alert]
    dead_letters: int
    migrations: list[dict[str, Any]] = Field(description="Migrations in progress.")


class Series(BaseModel):
    t: list[float] = Field(description="Sample times, Unix seconds; every list aligns.")
    queue_depth: list[int]
    indexing_lag_s: list[float]
    memory_share: list[float]
    index_bytes: list[int]
    points: dict[str, list[int | None]] = Field(description="Points per collection.")
    vectors_per_s: list[float | None] = Field(description="Growth of the stored vectors.")
    http_429_per_s: list[float | None]
    http_5xx_per_s: list[float | None]
    api_429_per_s: list[float | None] = Field(description="429s the API embedders got.")
    api_5xx_per_s: list[float | None]
    alerts: list[int] = Field(description="Active alert kinds.")


class CanaryPoint(BaseModel):
    run_id: int
    ran_at: str
    recall: float = Field(description="recall@10")
    ndcg: float = Field(description="nDCG@10")
    baseline_recall: float
    drop_points: float
    threshold_points: float
    alert: bool
    model: str
    collection: str
    points: int
    is_baseline: bool


class CanaryTrend(BaseModel):
    name: str
    collection: str
    queries: int
    baseline_run_id: int | None
    baseline_recall: float | None
    baseline_ndcg: float | None
    threshold_points: float
    runs: list[CanaryPoint]
    latest_metrics: dict[str, float] = Field(description="The latest run's evaluation.")


class Quality(BaseModel):
    canaries: list[CanaryTrend]


class MigrationList(BaseModel):
    migrations: list[dict[str, Any]] = Field(
        description="Each alias's latest migration: phase, progress, ETA, evaluation.")


class DeadLetterRow(BaseModel):
    collection: str
    doc_id: str
    source: str | None
    stage: str
    reason: str
    detail: str
    attempts: int
    first_seen: str
    last_seen: str


class DeadLetters(BaseModel):
    dead_letters: list[DeadLetterRow]


class Selection(BaseModel):
    collection: str | None = Field(None, max_length=200, description="Only this one.")
    doc_ids: list[str] | None = Field(None, max_length=10000, description="Only these ids.")


class RetryResult(BaseModel):
    retried: int = Field(description="Source files read again.")
    skipped: list[dict[str, str]]
    remaining: int = Field(description="Dead letters of the selection left.")
    runs: dict[str, Any]


class PurgeResult(BaseModel):
    purged: int


@router.get("/session", dependencies=[READ], response_model=Session,
            summary="The key the dashboard signed in with")
def session(request: Request, service: ServiceDep) -> Session:
    key: ApiKey | None = getattr(request.state, "api_key", None)
    if key is None:
        return Session(auth_required=service.auth_required())
    return Session(auth_required=True, key_id=key.key_id, scopes=list(key.scopes),
                   collections=list(key.collections) if key.collections else None)


@router.get("/overview", dependencies=[READ], response_model=Overview,
            summary="Collections, memory, queue, breakers, alerts now")
def overview(service: ServiceDep) -> Overview:
    service.refresh_gauges()
    store, ledger, m = service.store, service.ledger, service.metrics
    used = getattr(store, "index_memory_bytes", None)
    memory = memory_state(store, service.settings, used() if callable(used) else None,
                          log=False)
    rows = [CollectionRow(name=c.name, points=c.points, documents=ledger.document_count(c.name),
                          model=c.model, dim=c.dim, dtype=c.dtype,
                          index_bytes=_index_estimate(c), aliases=list(c.aliases))
            for c in store.list_collections()]
    return Overview(
        collections=rows, aliases=store.list_aliases(),
        memory=Memory(**memory.to_dict(), warn_share=WARN_SHARE),
        queue_depth=int(m.value("embedops_queue_depth")),
        indexing_lag_s=round(m.value("embedops_indexing_lag_seconds"), 3),
        breakers={lab["endpoint"]: BREAKER_STATES.get(int(v), str(v))
                  for lab, v in metric_samples(m, "embedops_api_breaker_state")},
        alerts=[Alert(**a) for a in active_alerts(store, ledger, service.settings, memory)],
        dead_letters=len(ledger.dead_letters()),
        migrations=[s for s in Migrations.summaries(store, ledger) if s["phase"] in ACTIVE_PHASES])


@router.get("/series", dependencies=[READ], response_model=Series,
            summary="The service's time series")
def series(service: ServiceDep,
           minutes: float = Query(60, gt=0, le=7 * 24 * 60,
                                  description="How far back, in minutes.")) -> Series:
    return Series(**ledger_series(service.ledger, minutes))


@router.get("/quality", dependencies=[READ], response_model=Quality,
            summary="Canary recall@10 and nDCG@10 over time")
def quality(service: ServiceDep,
            runs: int = Query(500, ge=1, le=10000, description="Latest runs per canary.")
            ) -> Quality:
    ledger = service.ledger
    trends = []
    for canary in ledger.canaries():
        history = canary_history(ledger, canary.name, runs)
        points = [CanaryPoint(recall=r["recall@10"], ndcg=r["ndcg@10"],
                              baseline_recall=r["baseline_recall@10"], **{
                                  k: r[k] for k in CanaryPoint.model_fields if k in r})
                  for r in history["runs"]]
        baseline = (ledger.canary_run(canary.name, canary.baseline_run_id)
                    if canary.baseline_run_id is not None else None)
        latest = next(iter(ledger.canary_runs(canary.name, limit=1)), None)
        threshold = (latest.threshold_points if latest is not None
                     else service.settings.canary_alert_drop_points)
        trends.append(CanaryTrend(
            name=canary.name, collection=canary.collection, queries=canary.queries,
            baseline_run_id=canary.baseline_run_id,
            baseline_recall=baseline.recall if baseline else None,
            baseline_ndcg=baseline.ndcg if baseline else None, threshold_points=threshold,
            runs=points, latest_metrics=latest.metrics if latest else {}))
    return Quality(canaries=trends)


@router.get("/migrations", dependencies=[READ], response_model=MigrationList,
            summary="Every alias's migration: phase, progress, ETA, evaluation")
async def migrations(service: ServiceDep) -> MigrationList:
    runner = await asyncio.to_thread(service.migrations)
    listed = await asyncio.to_thread(runner.migrations.list)
    out = []
    for m in listed:
        try:
            future = runner.submit(m["alias"], "status", {})
            out.append(await asyncio.wrap_future(future))
        except EmbedOpsError:  # dropped while we looked: the listed summary will do
            out.append(m)
    return MigrationList(migrations=out)


@router.get("/dead-letters", dependencies=[READ], response_model=DeadLetters,
            summary="Dead letters with their reasons and stages")
def list_dead_letters(service: ServiceDep, collection: str | None = Query(
        None, max_length=200, description="Only this collection.")) -> DeadLetters:
    letters = service.ledger.dead_letters(collection)
    return DeadLetters(dead_letters=[DeadLetterRow(**{k: getattr(d, k) for k in
                                                      DeadLetterRow.model_fields})
                                     for d in letters])


@router.post("/dead-letters/retry", dependencies=[ADMIN], response_model=RetryResult,
             summary="Read the sources of dead letters again")
async def retry(body: Selection, service: ServiceDep) -> RetryResult:
    result = await run_in_threadpool(dead_letters.retry_dead_letters, service,
                                     body.collection, body.doc_ids)
    return RetryResult(**result)


@router.post("/dead-letters/purge", dependencies=[ADMIN], response_model=PurgeResult,
             summary="Delete dead letters")
async def purge(body: Selection, service: ServiceDep) -> PurgeResult:
    result = await run_in_threadpool(dead_letters.purge_dead_letters, service,
                                     body.collection, body.doc_ids)
    return PurgeResult(**result)


@router.get("/thumbnails/{collection}/{doc_id:path}", dependencies=[READ],
            response_class=Response, summary="Thumbnail of an ingested image",
            responses={200: {"content": {"image/jpeg": {}},
                             "description": "A JPEG of at most 160 px a side."},
                       404: {"model": ErrorResponse, "description": "No image document "
                             "of that id, or its source file is gone."},
                       409: {"model": ErrorResponse, "description": "The source file "
                             "changed since it was embedded."}})
async def image_thumbnail(collection: str, doc_id: str, service: ServiceDep) -> Response:
    """Made from the document's source file, only while that file still holds the
    pixels that were embedded (``server/thumbnails.py``)."""
    name = await run_in_threadpool(service.store.resolve, collection)
    options = PreprocessOptions.from_settings(service.settings)
    data = await run_in_threadpool(thumbnail, service.ledger, name, doc_id, options)
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=300"})
